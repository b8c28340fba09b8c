package auth

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"sync"
)

// TLSFiles names the certificate files of one process.
type TLSFiles struct {
	// CertFile and KeyFile are the process's certificate and key (PEM):
	// served by its listeners, and presented to other Ferry processes when
	// they ask for a client certificate.
	CertFile, KeyFile string
	// ClientCAFile, when set, makes the listeners require a client
	// certificate signed by one of its CAs (mutual TLS).
	ClientCAFile string
	// CAFile verifies the servers this process dials (default: the
	// system's roots).
	CAFile string
	// ServerName overrides the name checked in a server's certificate.
	ServerName string
}

// Enabled reports whether the listeners serve TLS.
func (f TLSFiles) Enabled() bool { return f.CertFile != "" }

// Validate reports every inconsistent setting.
func (f TLSFiles) Validate() error {
	var errs []error
	if (f.CertFile == "") != (f.KeyFile == "") {
		errs = append(errs, errors.New("--tls-cert and --tls-key go together"))
	}
	if f.ClientCAFile != "" && f.CertFile == "" {
		errs = append(errs, errors.New("--tls-client-ca needs --tls-cert and --tls-key"))
	}
	return errors.Join(errs...)
}

// ServerConfig is the listeners' TLS configuration, nil when TLS is off.
// The certificate is re-read when its files change, so it can be renewed
// without a restart.
func (f TLSFiles) ServerConfig() (*tls.Config, error) {
	if err := f.Validate(); err != nil {
		return nil, err
	}
	if !f.Enabled() {
		return nil, nil
	}
	kp := &keyPair{cert: f.CertFile, key: f.KeyFile}
	if _, err := kp.get(); err != nil {
		return nil, err
	}
	cfg := &tls.Config{
		MinVersion:     tls.VersionTLS12,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return kp.get() },
	}
	if f.ClientCAFile != "" {
		pool, err := loadPool(f.ClientCAFile)
		if err != nil {
			return nil, err
		}
		cfg.ClientCAs = pool
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return cfg, nil
}

// ClientConfig is the configuration for dialling other Ferry processes
// over TLS: CAFile's roots, and this process's certificate as the client
// certificate when it has one.
func (f TLSFiles) ClientConfig() (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: f.ServerName}
	if f.CAFile != "" {
		pool, err := loadPool(f.CAFile)
		if err != nil {
			return nil, err
		}
		cfg.RootCAs = pool
	}
	if f.CertFile != "" {
		kp := &keyPair{cert: f.CertFile, key: f.KeyFile}
		if _, err := kp.get(); err != nil {
			return nil, err
		}
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return kp.get() }
	}
	return cfg, nil
}

func loadPool(file string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("CA file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("CA file %s: no PEM certificate in it", file)
	}
	return pool, nil
}

// keyPair is a certificate reloaded when its files change.
type keyPair struct {
	cert, key string

	mu     sync.Mutex
	stamps [2]fileStamp
	loaded *tls.Certificate
}

func (k *keyPair) get() (*tls.Certificate, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	var stamps [2]fileStamp
	for i, f := range []string{k.cert, k.key} {
		fi, err := os.Stat(f)
		if err != nil {
			if k.loaded != nil {
				return k.loaded, nil
			}
			return nil, fmt.Errorf("TLS certificate: %w", err)
		}
		stamps[i] = stampOf(fi)
	}
	if k.loaded != nil && stamps == k.stamps {
		return k.loaded, nil
	}
	c, err := tls.LoadX509KeyPair(k.cert, k.key)
	if err != nil {
		if k.loaded != nil {
			return k.loaded, nil // half-renewed files: keep serving the old pair
		}
		// The key's content never appears in the error of LoadX509KeyPair.
		return nil, fmt.Errorf("TLS certificate %s: %w", k.cert, err)
	}
	k.loaded, k.stamps = &c, stamps
	return k.loaded, nil
}
