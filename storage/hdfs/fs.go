package hdfs

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/user"
	"strings"
	"time"

	"github.com/colinmarc/hdfs/v2"
	"github.com/colinmarc/hdfs/v2/hadoopconf"
	krbclient "github.com/jcmturner/gokrb5/v8/client"
	krbconfig "github.com/jcmturner/gokrb5/v8/config"
	"github.com/jcmturner/gokrb5/v8/credentials"
	"github.com/jcmturner/gokrb5/v8/keytab"
)

// fileSystem is the part of an HDFS client the store uses: a namenode
// connection. It is the seam that lets the store's logic run in tests over
// a stand-in when no cluster is at hand.
type fileSystem interface {
	Stat(name string) (os.FileInfo, error)
	// Open opens a file for reading, or a directory for Readdir.
	Open(name string) (file, error)
	// Create creates a file that must not exist.
	Create(name string) (io.WriteCloser, error)
	// Rename moves oldpath to newpath, replacing newpath.
	Rename(oldpath, newpath string) error
	// Remove removes a file or an empty directory.
	Remove(name string) error
	MkdirAll(name string, perm os.FileMode) error
	Close() error
}

// file is an open file or directory.
type file interface {
	io.ReadSeekCloser
	// Readdir returns up to n entries in name order, continuing where the
	// last call stopped, and io.EOF at the end.
	Readdir(n int) ([]os.FileInfo, error)
	// Checksum is HDFS's MD5-of-MD5-of-CRC32C file checksum.
	Checksum() ([]byte, error)
}

// clientFS adapts *hdfs.Client.
type clientFS struct{ c *hdfs.Client }

func (f clientFS) Stat(name string) (os.FileInfo, error) { return f.c.Stat(name) }
func (f clientFS) Open(name string) (file, error) {
	r, err := f.c.Open(name)
	if err != nil {
		return nil, err
	}
	return r, nil
}
func (f clientFS) Create(name string) (io.WriteCloser, error) {
	w, err := f.c.Create(name)
	if err != nil {
		return nil, err
	}
	return w, nil
}
func (f clientFS) Rename(o, n string) error                  { return f.c.Rename(o, n) }
func (f clientFS) Remove(name string) error                  { return f.c.Remove(name) }
func (f clientFS) MkdirAll(name string, p os.FileMode) error { return f.c.MkdirAll(name, p) }
func (f clientFS) Close() error                              { return f.c.Close() }

// dialer connects to namenodes with the configured identity.
type dialer struct {
	opts      Options
	namenodes map[string][]string
	user      string
	kerberos  *krbclient.Client
	spn       string
}

// newDialer resolves the configuration that does not need the network:
// Hadoop configuration files, the user, Kerberos credentials.
func newDialer(opts Options) (*dialer, error) {
	d := &dialer{opts: opts, namenodes: map[string][]string{}, user: opts.User}
	for k, v := range opts.Namenodes {
		d.namenodes[k] = v
	}
	var spn string
	if opts.HadoopConfDir != "" {
		conf, err := hadoopconf.Load(opts.HadoopConfDir)
		if err != nil {
			return nil, fmt.Errorf("reading the Hadoop configuration: %w", err)
		}
		co := hdfs.ClientOptionsFromConf(conf)
		if _, ok := d.namenodes[""]; !ok && len(co.Addresses) > 0 {
			d.namenodes[""] = co.Addresses
		}
		if !d.opts.UseDatanodeHostname {
			d.opts.UseDatanodeHostname = co.UseDatanodeHostname
		}
		if d.opts.DataTransferProtection == "" {
			d.opts.DataTransferProtection = co.DataTransferProtection
		}
		spn = co.KerberosServicePrincipleName
	}
	if d.user == "" {
		u, err := user.Current()
		if err != nil {
			return nil, fmt.Errorf("no HDFS user configured and the OS user is unknown: %w", err)
		}
		d.user = u.Username
	}
	if k := opts.Kerberos; k != nil {
		kc, err := kerberosClient(*k)
		if err != nil {
			return nil, err
		}
		d.kerberos = kc
		d.spn = k.ServicePrincipal
		if d.spn == "" {
			d.spn = spn
		}
		if d.spn == "" {
			return nil, errors.New("kerberos: the namenode service principal is not set (kerberos.service_principal or dfs.namenode.kerberos.principal)")
		}
	}
	return d, nil
}

func kerberosClient(k Kerberos) (*krbclient.Client, error) {
	confPath := k.ConfigFile
	if confPath == "" {
		confPath = os.Getenv("KRB5_CONFIG")
	}
	if confPath == "" {
		confPath = "/etc/krb5.conf"
	}
	cfg, err := krbconfig.Load(confPath)
	if err != nil {
		return nil, fmt.Errorf("kerberos: reading %s: %w", confPath, err)
	}
	name, realm := k.Principal, k.Realm
	if at := strings.LastIndexByte(name, '@'); at >= 0 {
		name, realm = name[:at], name[at+1:]
	}
	if realm == "" {
		realm = cfg.LibDefaults.DefaultRealm
	}
	settings := krbclient.DisablePAFXFAST(true)
	switch {
	case k.KeytabFile != "":
		kt, err := keytab.Load(k.KeytabFile)
		if err != nil {
			return nil, fmt.Errorf("kerberos: reading the keytab %s: %w", k.KeytabFile, err)
		}
		return krbclient.NewWithKeytab(name, realm, kt, cfg, settings), nil
	case k.Password != "":
		return krbclient.NewWithPassword(name, realm, k.Password, cfg, settings), nil
	default:
		path := k.CCacheFile
		if path == "" {
			path = strings.TrimPrefix(os.Getenv("KRB5CCNAME"), "FILE:")
		}
		if path == "" {
			return nil, errors.New("kerberos: no keytab, password or credential cache")
		}
		cc, err := credentials.LoadCCache(path)
		if err != nil {
			return nil, fmt.Errorf("kerberos: reading the credential cache %s: %w", path, err)
		}
		return krbclient.NewFromCCache(cc, cfg, settings)
	}
}

// addresses are the namenodes serving authority.
func (d *dialer) addresses(authority string) ([]string, error) {
	if a, ok := d.namenodes[authority]; ok {
		return a, nil
	}
	if authority == "" {
		return nil, errors.New("hdfs:///path names no namenode and none is configured as the default")
	}
	if !strings.Contains(authority, ":") {
		// The Hadoop default RPC port.
		return []string{authority + ":8020"}, nil
	}
	return []string{authority}, nil
}

func (d *dialer) dial(authority string) (fileSystem, error) {
	addrs, err := d.addresses(authority)
	if err != nil {
		return nil, err
	}
	dial := (&net.Dialer{Timeout: d.opts.DialTimeout, KeepAlive: 30 * time.Second}).DialContext
	c, err := hdfs.NewClient(hdfs.ClientOptions{
		Addresses:                    addrs,
		User:                         d.user,
		UseDatanodeHostname:          d.opts.UseDatanodeHostname,
		NamenodeDialFunc:             dial,
		DatanodeDialFunc:             dial,
		KerberosClient:               d.kerberos,
		KerberosServicePrincipleName: d.spn,
		DataTransferProtection:       d.opts.DataTransferProtection,
	})
	if err != nil {
		return nil, fmt.Errorf("connecting to %s: %w", strings.Join(addrs, ","), err)
	}
	return clientFS{c}, nil
}
