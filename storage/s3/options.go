package s3

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
	// NoOverwriteAuto sends If-None-Match: * with the committing request and
	// also checks with a HEAD request just before it. Safe on every server:
	// race-free where the server honours the header, best effort where it
	// ignores it. A server that rejects the header (501 NotImplemented) is
	// remembered and no longer sent it. The default for custom endpoints.
	NoOverwriteAuto NoOverwrite = "auto"
	// NoOverwriteConditional relies on If-None-Match: * alone (AWS S3 since
	// 2024, recent MinIO and Ceph RGW): one request fewer per write, no race.
	// The default when no endpoint is configured (AWS).
	NoOverwriteConditional NoOverwrite = "conditional"
	// NoOverwriteCheck only checks with a HEAD request before committing,
	// for servers that mishandle the header. Another writer that commits
	// between the HEAD and the commit is silently replaced.
	NoOverwriteCheck NoOverwrite = "check"
)

// Checksums selects when the SDK computes and validates the flexible
// checksums (CRC32 …) that AWS introduced in 2025 and that some
// S3-compatible servers reject.
type Checksums string

const (
	// ChecksumsAuto is ChecksumsWhenSupported for AWS and ChecksumsWhenRequired
	// for custom endpoints.
	ChecksumsAuto Checksums = "auto"
	// ChecksumsWhenSupported computes a checksum for every upload that
	// supports one and validates downloads that carry one (the SDK default).
	ChecksumsWhenSupported Checksums = "when_supported"
	// ChecksumsWhenRequired computes checksums only where the API requires
	// them: what S3-compatible servers without flexible checksums accept.
	ChecksumsWhenRequired Checksums = "when_required"
)

// Connection is how to reach one endpoint: the store-wide default, or the
// override for one bucket. Empty fields of a bucket override inherit the
// default's.
type Connection struct {
	// Region of the bucket. Default: from the AWS configuration (AWS_REGION,
	// the profile), else "us-east-1", which S3-compatible servers accept.
	Region string
	// Endpoint is the base URL of an S3-compatible server
	// ("http://minio:9000"). Empty means AWS (or AWS_ENDPOINT_URL_S3).
	Endpoint string
	// PathStyle addresses buckets as https://endpoint/bucket/key instead of
	// https://bucket.endpoint/key; MinIO and Ceph usually need it. A nil
	// value inherits (and is false when nothing sets it).
	PathStyle *bool
	// AccessKeyID and SecretAccessKey (and SessionToken for temporary
	// credentials) are explicit static credentials. When empty, the standard
	// AWS chain is used: environment, shared files and Profile, web identity,
	// container and instance roles.
	AccessKeyID     string
	SecretAccessKey string
	SessionToken    string
	// Profile names a profile of the shared AWS configuration files.
	Profile string
	// Anonymous sends unsigned requests (public buckets).
	Anonymous bool
	// NoOverwrite selects the no-overwrite strategy; see the constants.
	NoOverwrite NoOverwrite
	// Checksums selects the SDK checksum behaviour; see the constants.
	Checksums Checksums
	// CABundle is a PEM file of extra root certificates for the endpoint.
	CABundle string
}

// Options configure a Store. The zero value works against AWS with the
// standard credential chain.
type Options struct {
	Connection
	// Buckets overrides the connection for individual buckets.
	Buckets map[string]Connection

	// PartSize is the size of one multipart-upload part, and the largest
	// object written with a single PUT. Default 8 MiB, at least 5 MiB. It
	// grows for very large objects so that no upload needs more than 10,000
	// parts.
	PartSize int64
	// Concurrency is how many parts of one upload (or copy) are in flight.
	// Default 4. A writer holds up to Concurrency+1 parts in memory.
	Concurrency int
	// MultipartCopyThreshold is the source size above which Copy uses
	// UploadPartCopy instead of a single CopyObject. Default (and maximum)
	// 5 GiB, the CopyObject limit.
	MultipartCopyThreshold int64
	// CopyPartSize is the part size of a multipart copy. Default 512 MiB.
	CopyPartSize int64

	// MaxAttempts bounds the SDK's own retries of one request (Temporal
	// retries whole activities above it). Default 4.
	MaxAttempts int
	// MinBackoff and MaxBackoff bound the jittered exponential delay between
	// attempts. Defaults 100ms and 5s.
	MinBackoff time.Duration
	MaxBackoff time.Duration
	// ConnectTimeout bounds dialing and the TLS handshake. Default 10s.
	ConnectTimeout time.Duration
	// ResponseTimeout bounds the wait for response headers of one attempt.
	// Default 60s.
	ResponseTimeout time.Duration
}

const (
	minPartSize      = 5 << 20
	maxPartSize      = 5 << 30
	maxParts         = 10_000
	maxCopySize      = 5 << 30
	defaultPartSize  = 8 << 20
	defaultCopyPart  = 512 << 20
	defaultAttempts  = 4
	defaultMinDelay  = 100 * time.Millisecond
	defaultMaxDelay  = 5 * time.Second
	defaultConnect   = 10 * time.Second
	defaultResponse  = 60 * time.Second
	defaultParallel  = 4
	defaultAWSRegion = "us-east-1"
)

// withDefaults fills in the documented defaults.
func (o Options) withDefaults() Options {
	if o.PartSize == 0 {
		o.PartSize = defaultPartSize
	}
	if o.Concurrency == 0 {
		o.Concurrency = defaultParallel
	}
	if o.MultipartCopyThreshold == 0 {
		o.MultipartCopyThreshold = maxCopySize
	}
	if o.CopyPartSize == 0 {
		o.CopyPartSize = defaultCopyPart
	}
	if o.MaxAttempts == 0 {
		o.MaxAttempts = defaultAttempts
	}
	if o.MinBackoff == 0 {
		o.MinBackoff = defaultMinDelay
	}
	if o.MaxBackoff == 0 {
		o.MaxBackoff = defaultMaxDelay
	}
	if o.ConnectTimeout == 0 {
		o.ConnectTimeout = defaultConnect
	}
	if o.ResponseTimeout == 0 {
		o.ResponseTimeout = defaultResponse
	}
	return o
}

// Validate reports every problem of o at once.
func (o Options) Validate() error {
	var errs []error
	if o.PartSize != 0 && (o.PartSize < minPartSize || o.PartSize > maxPartSize) {
		errs = append(errs, fmt.Errorf("part size %d is outside S3's limits [5 MiB, 5 GiB]", o.PartSize))
	}
	if o.CopyPartSize != 0 && (o.CopyPartSize < minPartSize || o.CopyPartSize > maxPartSize) {
		errs = append(errs, fmt.Errorf("copy part size %d is outside S3's limits [5 MiB, 5 GiB]", o.CopyPartSize))
	}
	if o.MultipartCopyThreshold < 0 || o.MultipartCopyThreshold > maxCopySize {
		errs = append(errs, fmt.Errorf("multipart copy threshold %d is outside [0, 5 GiB]", o.MultipartCopyThreshold))
	}
	if o.Concurrency < 0 {
		errs = append(errs, fmt.Errorf("concurrency %d is negative", o.Concurrency))
	}
	if o.MaxAttempts < 0 {
		errs = append(errs, fmt.Errorf("max attempts %d is negative", o.MaxAttempts))
	}
	if o.MinBackoff < 0 || o.MaxBackoff < 0 || (o.MaxBackoff != 0 && o.MinBackoff > o.MaxBackoff) {
		errs = append(errs, fmt.Errorf("backoff bounds [%v, %v] are invalid", o.MinBackoff, o.MaxBackoff))
	}
	errs = append(errs, o.validate("")...)
	names := make([]string, 0, len(o.Buckets))
	for b := range o.Buckets {
		names = append(names, b)
	}
	sort.Strings(names)
	for _, b := range names {
		if b == "" || strings.ContainsAny(b, "/") {
			errs = append(errs, fmt.Errorf("bucket override %q is not a bucket name", b))
		}
		errs = append(errs, o.Buckets[b].validate(b)...)
	}
	return errors.Join(errs...)
}

func (c Connection) validate(bucket string) []error {
	where := "s3"
	if bucket != "" {
		where = "s3 bucket " + bucket
	}
	var errs []error
	switch c.NoOverwrite {
	case "", NoOverwriteAuto, NoOverwriteConditional, NoOverwriteCheck:
	default:
		errs = append(errs, fmt.Errorf("%s: no_overwrite %q is not one of auto, conditional, check", where, c.NoOverwrite))
	}
	switch c.Checksums {
	case "", ChecksumsAuto, ChecksumsWhenSupported, ChecksumsWhenRequired:
	default:
		errs = append(errs, fmt.Errorf("%s: checksums %q is not one of auto, when_supported, when_required", where, c.Checksums))
	}
	if c.Endpoint != "" && !strings.HasPrefix(c.Endpoint, "http://") && !strings.HasPrefix(c.Endpoint, "https://") {
		errs = append(errs, fmt.Errorf("%s: endpoint %q must start with http:// or https://", where, c.Endpoint))
	}
	if (c.AccessKeyID == "") != (c.SecretAccessKey == "") {
		errs = append(errs, fmt.Errorf("%s: access key id and secret access key must be set together", where))
	}
	if c.Anonymous && c.AccessKeyID != "" {
		errs = append(errs, fmt.Errorf("%s: anonymous access and explicit credentials exclude each other", where))
	}
	return errs
}

// inherit returns c with its empty fields taken from def.
func (c Connection) inherit(def Connection) Connection {
	if c.Region == "" {
		c.Region = def.Region
	}
	if c.Endpoint == "" {
		c.Endpoint = def.Endpoint
	}
	if c.PathStyle == nil {
		c.PathStyle = def.PathStyle
	}
	if c.AccessKeyID == "" && c.Profile == "" && !c.Anonymous {
		c.AccessKeyID, c.SecretAccessKey, c.SessionToken = def.AccessKeyID, def.SecretAccessKey, def.SessionToken
		c.Profile, c.Anonymous = def.Profile, def.Anonymous
	}
	if c.NoOverwrite == "" {
		c.NoOverwrite = def.NoOverwrite
	}
	if c.Checksums == "" {
		c.Checksums = def.Checksums
	}
	if c.CABundle == "" {
		c.CABundle = def.CABundle
	}
	return c
}

// secrets lists the secret values of c, for scrubbing.
func (c Connection) secrets() []string {
	var out []string
	for _, s := range []string{c.SecretAccessKey, c.SessionToken} {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}

const redacted = "[REDACTED]"

func redact(s string) string {
	if s == "" {
		return ""
	}
	return redacted
}

// String describes c without its secrets.
func (c Connection) String() string {
	ps := "inherit"
	if c.PathStyle != nil {
		ps = fmt.Sprint(*c.PathStyle)
	}
	return fmt.Sprintf("{Region:%s Endpoint:%s PathStyle:%s AccessKeyID:%s SecretAccessKey:%s SessionToken:%s Profile:%s Anonymous:%v NoOverwrite:%s Checksums:%s CABundle:%s}",
		c.Region, c.Endpoint, ps, c.AccessKeyID, redact(c.SecretAccessKey), redact(c.SessionToken), c.Profile, c.Anonymous, c.NoOverwrite, c.Checksums, c.CABundle)
}

// Format prints c as String does, for every verb, so that no formatting of a
// Connection (or a struct holding one) reveals its secrets.
func (c Connection) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, c.String()) }

// String describes o without its secrets.
func (o Options) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "{Connection:%s Buckets:{", o.Connection)
	names := make([]string, 0, len(o.Buckets))
	for n := range o.Buckets {
		names = append(names, n)
	}
	sort.Strings(names)
	for i, n := range names {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%s:%s", n, o.Buckets[n])
	}
	fmt.Fprintf(&b, "} PartSize:%d Concurrency:%d MultipartCopyThreshold:%d CopyPartSize:%d MaxAttempts:%d MinBackoff:%v MaxBackoff:%v ConnectTimeout:%v ResponseTimeout:%v}",
		o.PartSize, o.Concurrency, o.MultipartCopyThreshold, o.CopyPartSize, o.MaxAttempts, o.MinBackoff, o.MaxBackoff, o.ConnectTimeout, o.ResponseTimeout)
	return b.String()
}

// Format prints o as String does, for every verb.
func (o Options) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, o.String()) }
