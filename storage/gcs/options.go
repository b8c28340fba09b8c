package gcs

import (
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"
)

// NoOverwrite says how a write without CreateOptions.Overwrite keeps an
// existing object from being replaced.
type NoOverwrite string

const (
	// NoOverwriteConditional relies on the ifGenerationMatch=0 precondition
	// (DoesNotExist) of the upload or rewrite, which GCS always honours. The
	// default when no endpoint is configured.
	NoOverwriteConditional NoOverwrite = "conditional"
	// NoOverwriteAuto also checks that the object is absent just before the
	// upload is finalized, for emulators that ignore preconditions on
	// resumable uploads and rewrites (fake-gcs-server). The default for
	// custom endpoints. Where the precondition is ignored, another writer
	// finishing between the check and the finalization is replaced.
	NoOverwriteAuto NoOverwrite = "auto"
)

// Connection is how to reach GCS: the store-wide default, or the override
// for one bucket. Empty fields of a bucket override inherit the default's.
type Connection struct {
	// Endpoint is the base URL of an emulator or a private endpoint
	// ("http://127.0.0.1:4443"); "/storage/v1/" is appended when the URL
	// has no path. Empty means GCS (or STORAGE_EMULATOR_HOST).
	Endpoint string
	// CredentialsFile is a JSON key file (service account, authorized
	// user, external account or impersonated service account).
	CredentialsFile string
	// CredentialsJSON is the content of such a file, for secrets passed by
	// the environment. Secret.
	CredentialsJSON string
	// Anonymous sends unauthenticated requests (public buckets, emulators).
	// With none of the three, Application Default Credentials are used
	// (GOOGLE_APPLICATION_CREDENTIALS, gcloud, the metadata server).
	Anonymous bool
	// NoOverwrite selects the no-overwrite strategy; see the constants.
	NoOverwrite NoOverwrite
}

// Options configure a Store.
type Options struct {
	Connection
	// Buckets overrides the connection for individual buckets.
	Buckets map[string]Connection
	// ChunkSize is the size of one request of a resumable upload, and the
	// most a writer buffers. Objects known to be smaller go in one request.
	// Default 16 MiB; rounded up to a multiple of 256 KiB.
	ChunkSize int
	// MaxAttempts bounds the client's own retries of one request (Temporal
	// retries whole activities above it). Default 4.
	MaxAttempts int
	// MinBackoff and MaxBackoff bound the exponential delay between
	// attempts. Defaults 100ms and 5s.
	MinBackoff time.Duration
	MaxBackoff time.Duration
}

const (
	defaultChunkSize = 16 << 20
	chunkAlign       = 256 << 10
	defaultAttempts  = 4
	defaultMinDelay  = 100 * time.Millisecond
	defaultMaxDelay  = 5 * time.Second
)

func (o Options) withDefaults() Options {
	if o.ChunkSize == 0 {
		o.ChunkSize = defaultChunkSize
	}
	o.ChunkSize = (o.ChunkSize + chunkAlign - 1) / chunkAlign * chunkAlign
	if o.MaxAttempts == 0 {
		o.MaxAttempts = defaultAttempts
	}
	if o.MinBackoff == 0 {
		o.MinBackoff = defaultMinDelay
	}
	if o.MaxBackoff == 0 {
		o.MaxBackoff = defaultMaxDelay
	}
	return o
}

// Validate reports every problem of o at once.
func (o Options) Validate() error {
	var errs []error
	if o.ChunkSize < 0 {
		errs = append(errs, fmt.Errorf("chunk size %d is negative", o.ChunkSize))
	}
	if o.MaxAttempts < 0 {
		errs = append(errs, fmt.Errorf("max attempts %d is negative", o.MaxAttempts))
	}
	if o.MinBackoff < 0 || o.MaxBackoff < 0 || (o.MaxBackoff != 0 && o.MinBackoff > o.MaxBackoff) {
		errs = append(errs, fmt.Errorf("backoff bounds [%v, %v] are invalid", o.MinBackoff, o.MaxBackoff))
	}
	errs = append(errs, o.validate("")...)
	for _, b := range sortedKeys(o.Buckets) {
		if b == "" || strings.Contains(b, "/") {
			errs = append(errs, fmt.Errorf("bucket override %q is not a bucket name", b))
		}
		errs = append(errs, o.Buckets[b].validate(b)...)
	}
	return errors.Join(errs...)
}

func (c Connection) validate(bucket string) []error {
	where := "gcs"
	if bucket != "" {
		where = "gcs bucket " + bucket
	}
	var errs []error
	switch c.NoOverwrite {
	case "", NoOverwriteConditional, NoOverwriteAuto:
	default:
		errs = append(errs, fmt.Errorf("%s: no_overwrite %q is not one of conditional, auto", where, c.NoOverwrite))
	}
	if c.Endpoint != "" && !strings.HasPrefix(c.Endpoint, "http://") && !strings.HasPrefix(c.Endpoint, "https://") {
		errs = append(errs, fmt.Errorf("%s: endpoint %q must start with http:// or https://", where, c.Endpoint))
	}
	n := 0
	for _, set := range []bool{c.CredentialsFile != "", c.CredentialsJSON != "", c.Anonymous} {
		if set {
			n++
		}
	}
	if n > 1 {
		errs = append(errs, fmt.Errorf("%s: credentials file, credentials JSON and anonymous access exclude each other", where))
	}
	return errs
}

func (c Connection) inherit(def Connection) Connection {
	if c.Endpoint == "" {
		c.Endpoint = def.Endpoint
	}
	if c.CredentialsFile == "" && c.CredentialsJSON == "" && !c.Anonymous {
		c.CredentialsFile, c.CredentialsJSON, c.Anonymous = def.CredentialsFile, def.CredentialsJSON, def.Anonymous
	}
	if c.NoOverwrite == "" {
		c.NoOverwrite = def.NoOverwrite
	}
	return c
}

func sortedKeys(m map[string]Connection) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

const redacted = "[REDACTED]"

// String describes c without its secret.
func (c Connection) String() string {
	js := ""
	if c.CredentialsJSON != "" {
		js = redacted
	}
	return fmt.Sprintf("{Endpoint:%s CredentialsFile:%s CredentialsJSON:%s Anonymous:%v NoOverwrite:%s}",
		c.Endpoint, c.CredentialsFile, js, c.Anonymous, c.NoOverwrite)
}

// Format prints c as String does, for every verb.
func (c Connection) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, c.String()) }

// String describes o without its secrets.
func (o Options) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "{Connection:%s Buckets:{", o.Connection)
	for i, n := range sortedKeys(o.Buckets) {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%s:%s", n, o.Buckets[n])
	}
	fmt.Fprintf(&b, "} ChunkSize:%d MaxAttempts:%d MinBackoff:%v MaxBackoff:%v}", o.ChunkSize, o.MaxAttempts, o.MinBackoff, o.MaxBackoff)
	return b.String()
}

// Format prints o as String does, for every verb.
func (o Options) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, o.String()) }
