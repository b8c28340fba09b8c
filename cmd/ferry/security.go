package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"go.temporal.io/sdk/client"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/ferryio/ferry/api"
	"github.com/ferryio/ferry/cachenode"
	"github.com/ferryio/ferry/cachenode/httpapi"
	"github.com/ferryio/ferry/internal/auth"
)

// securityFlags are the access-control settings every process shares:
// the tokens its listeners accept, the token it presents to other Ferry
// processes, browser-safety exceptions, TLS, storage mounts, and how it
// reaches a secured Temporal.
type securityFlags struct {
	tokensFile     string
	noAuth         bool
	anonymousReads string
	allowedHosts   []string
	allowedOrigins []string

	token     string
	tokenFile string

	tls auth.TLSFiles

	mounts []string

	temporalTLS        bool
	temporalCA         string
	temporalCert       string
	temporalKey        string
	temporalServerName string
	temporalAPIKeyFile string
}

func (s *securityFlags) register(f *pflag.FlagSet) {
	f.StringVar(&s.tokensFile, "auth-tokens-file", os.Getenv("FERRY_AUTH_TOKENS_FILE"),
		"file of accepted bearer tokens, one name:role:token per line (role read or write), re-read when it changes (env FERRY_AUTH_TOKENS_FILE; FERRY_AUTH_TOKENS holds more, comma-separated)")
	f.BoolVar(&s.noAuth, "insecure-no-auth", envBool("FERRY_INSECURE_NO_AUTH"),
		"serve without authentication; refused unless every listener is on loopback (env FERRY_INSECURE_NO_AUTH)")
	f.StringVar(&s.anonymousReads, "anonymous-reads", os.Getenv("FERRY_ANONYMOUS_READS"),
		"cache node reads without a token, for the alluxiofs client: off, loopback (clients on this machine) or all (env FERRY_ANONYMOUS_READS; ferry dev: loopback)")
	f.StringSliceVar(&s.allowedHosts, "allowed-hosts", splitList(os.Getenv("FERRY_ALLOWED_HOSTS")),
		"host names accepted in the Host header besides IP addresses, localhost and this machine's name (env FERRY_ALLOWED_HOSTS)")
	f.StringSliceVar(&s.allowedOrigins, "allowed-origins", splitList(os.Getenv("FERRY_ALLOWED_ORIGINS")),
		"web origins allowed to call the APIs from a browser, e.g. https://ui.example (env FERRY_ALLOWED_ORIGINS)")
	f.StringVar(&s.token, "token", "", "bearer token sent to the Ferry APIs and to other Ferry processes (env FERRY_TOKEN; never logged)")
	f.StringVar(&s.tokenFile, "token-file", os.Getenv("FERRY_TOKEN_FILE"),
		"file whose first line is the bearer token to send, re-read when it changes (env FERRY_TOKEN_FILE; default <data-dir>/token when it exists)")
	f.StringVar(&s.tls.CertFile, "tls-cert", os.Getenv("FERRY_TLS_CERT"), "certificate (PEM) of this process's listeners, and its client certificate towards other Ferry processes (env FERRY_TLS_CERT)")
	f.StringVar(&s.tls.KeyFile, "tls-key", os.Getenv("FERRY_TLS_KEY"), "private key (PEM) of --tls-cert (env FERRY_TLS_KEY)")
	f.StringVar(&s.tls.ClientCAFile, "tls-client-ca", os.Getenv("FERRY_TLS_CLIENT_CA"), "CA bundle (PEM): listeners require client certificates signed by it, mutual TLS (env FERRY_TLS_CLIENT_CA)")
	f.StringVar(&s.tls.CAFile, "tls-ca", os.Getenv("FERRY_TLS_CA"), "CA bundle (PEM) that verifies the Ferry servers this process calls, default the system's (env FERRY_TLS_CA)")
	f.StringVar(&s.tls.ServerName, "tls-server-name", os.Getenv("FERRY_TLS_SERVER_NAME"), "name expected in the certificates of the Ferry servers called (env FERRY_TLS_SERVER_NAME)")
	f.StringArrayVar(&s.mounts, "mount", nil,
		"storage location this process may touch: a local path or a URI prefix, \"ro:\" in front for read-only; repeatable; adds to the storage configuration's mounts and FERRY_MOUNTS")
	f.BoolVar(&s.temporalTLS, "temporal-tls", envBool("FERRY_TEMPORAL_TLS"), "dial Temporal over TLS (implied by the other --temporal-tls-* flags and the API key; env FERRY_TEMPORAL_TLS)")
	f.StringVar(&s.temporalCA, "temporal-tls-ca", os.Getenv("FERRY_TEMPORAL_TLS_CA"), "CA bundle (PEM) verifying Temporal's certificate (env FERRY_TEMPORAL_TLS_CA)")
	f.StringVar(&s.temporalCert, "temporal-tls-cert", os.Getenv("FERRY_TEMPORAL_TLS_CERT"), "client certificate (PEM) for Temporal mutual TLS (env FERRY_TEMPORAL_TLS_CERT)")
	f.StringVar(&s.temporalKey, "temporal-tls-key", os.Getenv("FERRY_TEMPORAL_TLS_KEY"), "private key (PEM) of --temporal-tls-cert (env FERRY_TEMPORAL_TLS_KEY)")
	f.StringVar(&s.temporalServerName, "temporal-tls-server-name", os.Getenv("FERRY_TEMPORAL_TLS_SERVER_NAME"), "name expected in Temporal's certificate (env FERRY_TEMPORAL_TLS_SERVER_NAME)")
	f.StringVar(&s.temporalAPIKeyFile, "temporal-api-key-file", os.Getenv("FERRY_TEMPORAL_API_KEY_FILE"),
		"file holding a Temporal Cloud API key, re-read when it changes (env FERRY_TEMPORAL_API_KEY_FILE, or the key itself in FERRY_TEMPORAL_API_KEY)")
}

func envBool(name string) bool {
	v := strings.ToLower(os.Getenv(name))
	return v == "1" || v == "true" || v == "yes"
}

func splitList(v string) []string {
	return strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' })
}

// access is a process's built access control, shared by its listeners.
type access struct {
	flags   *securityFlags
	tokens  *auth.Tokens
	client  *auth.TokenSource
	server  *tls.Config
	dialTLS *tls.Config
	// anonymous reads of the cache node HTTP API.
	anonymous auth.AnonymousReads
}

// buildAccess reads the token sets and TLS files. extraToken, when set, is
// accepted with the write role under the name "dev" and sent on internal
// calls (ferry dev's own token). listeners are the addresses this process
// will serve; --insecure-no-auth is refused unless all are loopback.
func (s *securityFlags) buildAccess(dataDir, extraToken string, listeners ...string) (*access, error) {
	if s.noAuth {
		for _, l := range listeners {
			if l != "" && !auth.IsLoopback(l) {
				return nil, fmt.Errorf("--insecure-no-auth is only allowed when every listener is on loopback; %s is not", l)
			}
		}
	}
	tokens, err := auth.NewTokens(s.tokensFile, os.Getenv("FERRY_AUTH_TOKENS"))
	if err != nil {
		return nil, err
	}
	a, err := s.dialAccess(dataDir)
	if err != nil {
		return nil, err
	}
	a.tokens = tokens
	if extraToken != "" {
		tokens.Add("dev", auth.RoleWrite, extraToken)
	}
	if a.anonymous, err = auth.ParseAnonymousReads(s.anonymousReads); err != nil {
		return nil, fmt.Errorf("--anonymous-reads: %w", err)
	}
	if a.client == nil && extraToken != "" {
		a.client = auth.StaticToken(extraToken)
	}
	if tokens.Count() == 0 && !s.noAuth {
		slog.Warn("no bearer token is configured: every API request will be refused (set --auth-tokens-file or FERRY_AUTH_TOKENS, or --insecure-no-auth on loopback)")
	}
	return a, nil
}

// dialAccess is what a process needs to call other Ferry processes: the
// token it sends and its TLS settings. A process that serves nothing (a
// coordinator) needs no more; buildAccess adds the listeners' side.
func (s *securityFlags) dialAccess(dataDir string) (*access, error) {
	a := &access{flags: s, client: s.clientToken(dataDir)}
	var err error
	if a.server, err = s.tls.ServerConfig(); err != nil {
		return nil, err
	}
	if a.dialTLS, err = s.tls.ClientConfig(); err != nil {
		return nil, err
	}
	return a, nil
}

// clientToken is the token this process sends: --token, --token-file,
// FERRY_TOKEN, FERRY_TOKEN_FILE, or <dataDir>/token when that file exists
// (a flag beats the environment). Nil: none.
func (s *securityFlags) clientToken(dataDir string) *auth.TokenSource {
	switch {
	case s.token != "":
		return auth.StaticToken(s.token)
	case s.tokenFile != "" && s.tokenFile != os.Getenv("FERRY_TOKEN_FILE"):
		return auth.FileToken(s.tokenFile)
	case os.Getenv("FERRY_TOKEN") != "":
		return auth.StaticToken(os.Getenv("FERRY_TOKEN"))
	case s.tokenFile != "":
		return auth.FileToken(s.tokenFile)
	}
	if dataDir != "" {
		p := filepath.Join(dataDir, devTokenFile)
		if _, err := os.Stat(p); err == nil {
			return auth.FileToken(p)
		}
	}
	return nil
}

// devTokenFile is where ferry dev keeps its token, under its data dir.
const devTokenFile = "token"

// policy is the HTTP access policy of one listener.
func (a *access) policy(classify auth.Classifier, anonymous auth.AnonymousReads) *auth.Policy {
	return &auth.Policy{
		Tokens:         a.tokens,
		NoAuth:         a.flags.noAuth,
		AnonymousReads: anonymous,
		AllowedHosts:   a.flags.allowedHosts,
		AllowedOrigins: a.flags.allowedOrigins,
		Classify:       classify,
		Logger:         slog.Default(),
	}
}

// apiHandler wraps the REST API in its access policy.
func (a *access) apiHandler(h http.Handler) http.Handler {
	return a.policy(api.Classify, auth.AnonymousReadsOff).Middleware(h)
}

// scheme is the URL scheme of this process's listeners.
func (a *access) scheme() string {
	if a.server != nil {
		return "https"
	}
	return "http"
}

// nodeSecurity fills the access-control fields of a cache node's config.
func (a *access) nodeSecurity(cfg *cachenode.Config) {
	pol := a.policy(httpapi.Classify, a.anonymous)
	cfg.WrapHTTP = pol.Middleware
	gp := &auth.GRPCPolicy{
		Tokens: a.tokens, NoAuth: a.flags.noAuth, Logger: slog.Default(),
		Methods: map[string]auth.Role{
			"/ferry.cachenode.v1.CacheNode/ReadRange": auth.RoleRead,
			"/ferry.cachenode.v1.CacheNode/Stat":      auth.RoleRead,
			"/ferry.cachenode.v1.CacheNode/NodeStats": auth.RoleRead,
			// Which files are cached: no more than Stat tells.
			"/ferry.cachenode.v1.CacheNode/CachedFiles": auth.RoleRead,
		},
		Audit: map[string]bool{
			"/ferry.cachenode.v1.CacheNode/LoadFiles": true,
			"/ferry.cachenode.v1.CacheNode/Evict":     true,
		},
	}
	cfg.GRPCOptions = gp.ServerOptions()
	cfg.TLS = a.server
	cfg.ForwardClient = &http.Client{
		Timeout:   60 * time.Second,
		Transport: &auth.Transport{Base: a.httpTransport(), ForwardOnly: true},
	}
}

// httpTransport dials other Ferry processes with this process's TLS
// client settings.
func (a *access) httpTransport() http.RoundTripper {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.TLSClientConfig = a.dialTLS
	return t
}

// grpcDialOptions are the options node-to-node gRPC calls use: TLS when the
// nodes serve it, and this process's token.
func (a *access) grpcDialOptions() []grpc.DialOption {
	var opts []grpc.DialOption
	if a.server != nil {
		opts = append(opts, grpc.WithTransportCredentials(credentials.NewTLS(a.dialTLS)))
	}
	if a.client != nil {
		opts = append(opts, grpc.WithPerRPCCredentials(auth.Credentials{Source: a.client, Secure: a.server != nil}))
	}
	return opts
}

// temporalConnection sets the TLS and API-key options of a Temporal client.
func (s *securityFlags) temporalConnection(opts *client.Options) error {
	key := os.Getenv("FERRY_TEMPORAL_API_KEY")
	useTLS := s.temporalTLS || s.temporalCA != "" || s.temporalCert != "" || s.temporalServerName != "" || key != "" || s.temporalAPIKeyFile != ""
	if !useTLS {
		return nil
	}
	if (s.temporalCert == "") != (s.temporalKey == "") {
		return errors.New("--temporal-tls-cert and --temporal-tls-key go together")
	}
	files := auth.TLSFiles{CAFile: s.temporalCA, CertFile: s.temporalCert, KeyFile: s.temporalKey, ServerName: s.temporalServerName}
	cfg, err := files.ClientConfig()
	if err != nil {
		return fmt.Errorf("TLS for Temporal: %w", err)
	}
	opts.ConnectionOptions.TLS = cfg
	switch {
	case s.temporalAPIKeyFile != "":
		src := auth.FileToken(s.temporalAPIKeyFile)
		if _, err := src.Token(); err != nil {
			return fmt.Errorf("--temporal-api-key-file: %w", err)
		}
		opts.Credentials = client.NewAPIKeyDynamicCredentials(func(context.Context) (string, error) { return src.Token() })
	case key != "":
		opts.Credentials = client.NewAPIKeyStaticCredentials(key)
	}
	return nil
}

// cliTransport is the HTTP transport of the command-line clients: the
// token of --token, FERRY_TOKEN, --token-file or the dev data directory's
// token file, and --tls-ca for an HTTPS API.
func (s *securityFlags) cliTransport() (http.RoundTripper, error) {
	tlsCfg, err := s.tls.ClientConfig()
	if err != nil {
		return nil, err
	}
	base := http.DefaultTransport.(*http.Transport).Clone()
	base.TLSClientConfig = tlsCfg
	src := s.clientToken(envOr("FERRY_DATA_DIR", ".ferry"))
	if _, err := src.Token(); err != nil {
		return nil, err
	}
	return &auth.Transport{Base: base, Source: src}, nil
}

// devAccess is ferry dev's access control: its own token (created at the
// first start in <data-dir>/token, mode 0600), the mounts it adds (its
// working directory and its failure lists), and anonymous reads of the
// cache nodes from this machine unless told otherwise.
type devAccess struct {
	acc       *access
	tokenPath string
	created   bool
	mounts    []string
}

func devSecurity(g *globals, dataDir string, listeners ...string) (*devAccess, error) {
	d := &devAccess{tokenPath: filepath.Join(dataDir, devTokenFile)}
	if abs, err := filepath.Abs(d.tokenPath); err == nil {
		d.tokenPath = abs
	}
	tok, created, err := auth.EnsureTokenFile(d.tokenPath)
	if err != nil {
		return nil, err
	}
	d.created = created
	wd, err := os.Getwd()
	if err != nil {
		return nil, err
	}
	absData, err := filepath.Abs(dataDir)
	if err != nil {
		return nil, err
	}
	// The working directory (where the README's first job points); --mount
	// and the configuration add more. The manifest store needs no mount:
	// the processes reach it through a resolver of its own, jobs never.
	d.mounts = []string{wd}
	// The data directory itself (the token, the Temporal database, the
	// manifest store) is off limits, also when the working directory
	// mount holds it.
	g.mounts = append(g.mounts, d.mounts...)
	g.mounts = append(g.mounts, "deny:"+absData)
	if g.sec.anonymousReads == "" {
		g.sec.anonymousReads = string(auth.AnonymousReadsLoopback)
	}
	if d.acc, err = g.sec.buildAccess(dataDir, tok, listeners...); err != nil {
		return nil, err
	}
	// Internal calls carry the dev token even when --token names another.
	d.acc.client = auth.StaticToken(tok)
	return d, nil
}

// print adds the security lines to ferry dev's banner; never the token.
func (d *devAccess) print(w interface{ Write([]byte) (int, error) }) {
	state := "kept in"
	if d.created {
		state = "created in"
	}
	_, _ = fmt.Fprintf(w, "API token %s %s (mode 0600; `ferry job` finds it when FERRY_DATA_DIR names this directory (default .ferry); else set FERRY_TOKEN_FILE)\n", state, d.tokenPath)
	_, _ = fmt.Fprintf(w, "Storage mounts: %s and --mount paths; cache-node reads without a token: %s\n", strings.Join(d.mounts, ", "), d.acc.anonymous)
}

// nodeListeners are the listen addresses ferry dev's --node-hosts gives its
// nodes (port 0 stands for any: only the host matters to the loopback
// rule).
func nodeListeners(hosts string) []string {
	var out []string
	for _, h := range splitList(hosts) {
		out = append(out, net.JoinHostPort(h, "0"))
	}
	return out
}
