package s3

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go/logging"
	"github.com/aws/smithy-go/middleware"

	"github.com/ferryio/ferry/storage"
)

// Scheme is the URI scheme the store serves.
const Scheme = "s3"

// Store serves s3:// URIs. It is safe for concurrent use.
type Store struct {
	opts    Options
	def     *conn
	buckets map[string]*conn
	// existing remembers buckets whose existence a HEAD confirmed, so that
	// Create checks each bucket once per process.
	existing sync.Map
}

var (
	_ storage.Store  = (*Store)(nil)
	_ storage.Copier = (*Store)(nil)
)

// conn is one configured client: the default, or a bucket's override.
type conn struct {
	api         *s3.Client
	endpoint    string // for error messages
	noOverwrite NoOverwrite
	secrets     []string
	// noConditional is set once the server rejected If-None-Match.
	noConditional atomic.Bool
}

// New builds a Store. It reads the AWS configuration (environment, shared
// files) but makes no request.
func New(ctx context.Context, opts Options) (*Store, error) {
	if err := opts.Validate(); err != nil {
		return nil, fmt.Errorf("s3 storage: %w", err)
	}
	opts = opts.withDefaults()
	s := &Store{opts: opts, buckets: map[string]*conn{}}
	var err error
	if s.def, err = newConn(ctx, opts.Connection, opts); err != nil {
		return nil, fmt.Errorf("s3 storage: %w", err)
	}
	for name, c := range opts.Buckets {
		if s.buckets[name], err = newConn(ctx, c.inherit(opts.Connection), opts); err != nil {
			return nil, fmt.Errorf("s3 storage, bucket %s: %w", name, err)
		}
	}
	return s, nil
}

func newConn(ctx context.Context, c Connection, o Options) (*conn, error) {
	load := []func(*config.LoadOptions) error{
		config.WithHTTPClient(httpClient(o)),
		config.WithRetryer(func() aws.Retryer { return newRetryer(o) }),
		config.WithLogger(logging.Nop{}),
	}
	if c.Region != "" {
		load = append(load, config.WithRegion(c.Region))
	}
	if c.CABundle != "" {
		pem, err := os.ReadFile(c.CABundle)
		if err != nil {
			return nil, fmt.Errorf("reading the CA bundle: %w", err)
		}
		load = append(load, config.WithCustomCABundle(bytes.NewReader(pem)))
	}
	if c.Profile != "" {
		load = append(load, config.WithSharedConfigProfile(c.Profile))
	}
	switch {
	case c.Anonymous:
		load = append(load, config.WithCredentialsProvider(aws.AnonymousCredentials{}))
	case c.AccessKeyID != "":
		load = append(load, config.WithCredentialsProvider(
			credentials.NewStaticCredentialsProvider(c.AccessKeyID, c.SecretAccessKey, c.SessionToken)))
	}
	cfg, err := config.LoadDefaultConfig(ctx, load...)
	if err != nil {
		return nil, fmt.Errorf("loading the AWS configuration: %w", scrub(err, c.secrets()))
	}
	if cfg.Region == "" {
		cfg.Region = defaultAWSRegion
	}
	custom := c.Endpoint != "" || cfg.BaseEndpoint != nil
	checks := c.Checksums
	if checks == "" || checks == ChecksumsAuto {
		checks = ChecksumsWhenSupported
		if custom {
			checks = ChecksumsWhenRequired
		}
	}
	api := s3.NewFromConfig(cfg, func(so *s3.Options) {
		if c.Endpoint != "" {
			so.BaseEndpoint = aws.String(c.Endpoint)
		}
		so.UsePathStyle = c.PathStyle != nil && *c.PathStyle
		so.DisableLogOutputChecksumValidationSkipped = true
		if checks == ChecksumsWhenRequired {
			so.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
			so.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
		} else {
			so.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenSupported
			so.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenSupported
		}
	})
	endpoint := c.Endpoint
	if endpoint == "" && cfg.BaseEndpoint != nil {
		endpoint = *cfg.BaseEndpoint
	}
	if endpoint == "" {
		endpoint = "AWS S3 (" + cfg.Region + ")"
	}
	mode := c.NoOverwrite
	if mode == "" {
		mode = NoOverwriteConditional
		if custom {
			mode = NoOverwriteAuto
		}
	}
	return &conn{api: api, endpoint: endpoint, noOverwrite: mode, secrets: c.secrets()}, nil
}

// httpClient is the SDK's buildable client (which AWS_CA_BUNDLE and
// CABundle need) with bounded connect and response-header waits.
func httpClient(o Options) *awshttp.BuildableClient {
	return awshttp.NewBuildableClient().
		WithDialerOptions(func(d *net.Dialer) {
			d.Timeout = o.ConnectTimeout
			d.KeepAlive = 30 * time.Second
		}).
		WithTransportOptions(func(tr *http.Transport) {
			tr.TLSHandshakeTimeout = o.ConnectTimeout
			tr.ResponseHeaderTimeout = o.ResponseTimeout
			tr.MaxIdleConnsPerHost = max(16, 2*o.Concurrency)
		})
}

// newRetryer bounds the SDK's retries: a few attempts with jittered
// exponential backoff. Temporal retries whole activities above it.
func newRetryer(o Options) aws.Retryer {
	return retry.NewStandard(func(so *retry.StandardOptions) {
		so.MaxAttempts = o.MaxAttempts
		so.MaxBackoff = o.MaxBackoff
		so.Backoff = backoff{min: o.MinBackoff, max: o.MaxBackoff}
	})
}

type backoff struct{ min, max time.Duration }

// BackoffDelay is min·2^(attempt-1), capped at max, with "equal jitter":
// between half and all of it.
func (b backoff) BackoffDelay(attempt int, _ error) (time.Duration, error) {
	d := b.min
	for i := 1; i < attempt && d < b.max; i++ {
		d *= 2
	}
	d = min(d, b.max)
	return d/2 + rand.N(d/2+1), nil
}

func scrub(err error, secrets []string) error {
	msg := err.Error()
	for _, s := range secrets {
		msg = strings.ReplaceAll(msg, s, redacted)
	}
	if msg == err.Error() {
		return err
	}
	return errors.New(msg)
}

// Scheme is "s3".
func (s *Store) Scheme() string { return Scheme }

func (s *Store) conn(bucket string) *conn {
	if c, ok := s.buckets[bucket]; ok {
		return c
	}
	return s.def
}

// location is a parsed s3 URI.
type location struct {
	bucket string
	key    string
}

// bucketName is what S3 and compatible servers accept; checked loosely so
// that a wrong name fails here with a clear message rather than at the
// server with a signature error.
var bucketName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{1,254}$`)

func (s *Store) parse(op, uri string) (location, *conn, error) {
	u, err := storage.ParseURI(uri)
	if err != nil {
		return location{}, nil, storage.NewError(op, uri, storage.ErrInvalidPath, err)
	}
	if u.Scheme != Scheme {
		return location{}, nil, storage.NewError(op, uri, storage.ErrInvalidPath, fmt.Errorf("scheme %q is not s3", u.Scheme))
	}
	if !bucketName.MatchString(u.Authority) {
		return location{}, nil, storage.NewError(op, uri, storage.ErrInvalidPath, fmt.Errorf("%q is not a bucket name", u.Authority))
	}
	key := strings.TrimPrefix(u.Path, "/")
	if len(key) > 1024 {
		return location{}, nil, storage.NewError(op, uri, storage.ErrInvalidPath, errors.New("key longer than 1024 bytes"))
	}
	return location{bucket: u.Authority, key: key}, s.conn(u.Authority), nil
}

// dirPrefix is the key prefix of the directory named by key.
func dirPrefix(key string) string {
	if key == "" || strings.HasSuffix(key, "/") {
		return key
	}
	return key + "/"
}

// Stat describes the object at uri, or the directory (prefix) when objects
// exist below it.
func (s *Store) Stat(ctx context.Context, uri string) (storage.Entry, error) {
	loc, c, err := s.parse("stat", uri)
	if err != nil {
		return storage.Entry{}, err
	}
	if loc.key == "" {
		if _, err := c.api.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: &loc.bucket}); err != nil {
			return storage.Entry{}, s.bucketError(ctx, "stat", uri, loc.bucket, c, err)
		}
		return storage.Entry{URI: uri, IsDir: true}, nil
	}
	out, err := c.api.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &loc.bucket, Key: &loc.key})
	switch {
	case err == nil && !isMarker(loc.key, aws.ToInt64(out.ContentLength)):
		return headEntry(uri, out), nil
	case err != nil && !errors.Is(classify(err), storage.ErrNotFound):
		return storage.Entry{}, s.failHead(ctx, c, "stat", uri, loc, err)
	}
	isDir, err := s.hasChildren(ctx, c, loc)
	if err != nil {
		return storage.Entry{}, c.fail("stat", uri, err)
	}
	if !isDir {
		return storage.Entry{}, storage.NewError("stat", uri, storage.ErrNotFound, nil)
	}
	return storage.Entry{URI: uri, IsDir: true}, nil
}

// hasChildren reports whether any object exists below the directory loc.key.
// A missing bucket is an error (NoSuchBucket), which tells it apart from a
// missing key.
func (s *Store) hasChildren(ctx context.Context, c *conn, loc location) (bool, error) {
	prefix := dirPrefix(loc.key)
	out, err := c.api.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: &loc.bucket, Prefix: &prefix, MaxKeys: aws.Int32(1)})
	if err != nil {
		return false, err
	}
	return len(out.Contents) > 0 || len(out.CommonPrefixes) > 0, nil
}

// bucketError describes a failed HeadBucket, whose answer carries no body.
func (s *Store) bucketError(ctx context.Context, op, uri, bucket string, c *conn, err error) error {
	if errors.Is(classify(err), storage.ErrNotFound) {
		return storage.NewError(op, uri, storage.ErrNotFound, &cause{msg: fmt.Sprintf("NoSuchBucket: bucket %q does not exist (HTTP 404 from %s)", bucket, c.endpoint), err: err})
	}
	return c.fail(op, uri, s.explain(ctx, c, location{bucket: bucket}, err))
}

// explain replaces the bodiless 403 of a HEAD request by the error of a
// request that gets a body (GET of the first byte, or a one-key listing of a
// bucket), so that the message says why: AccessDenied, InvalidAccessKeyId,
// SignatureDoesNotMatch, ExpiredToken. It costs a request on failures only.
func (s *Store) explain(ctx context.Context, c *conn, loc location, err error) error {
	if !errors.Is(classify(err), storage.ErrPermission) {
		return err
	}
	if code := errorCode(err); code != "" && code != "Forbidden" {
		return err
	}
	var err2 error
	if loc.key == "" {
		_, err2 = c.api.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: &loc.bucket, MaxKeys: aws.Int32(1)})
	} else {
		var out *s3.GetObjectOutput
		out, err2 = c.api.GetObject(ctx, &s3.GetObjectInput{Bucket: &loc.bucket, Key: &loc.key, Range: aws.String("bytes=0-0")})
		if err2 == nil {
			_ = out.Body.Close()
		}
	}
	if err2 != nil && errors.Is(classify(err2), storage.ErrPermission) && errorCode(err2) != "" && errorCode(err2) != "Forbidden" {
		return err2
	}
	return err
}

// failHead is fail for errors of HEAD requests.
func (s *Store) failHead(ctx context.Context, c *conn, op, uri string, loc location, err error) error {
	return c.fail(op, uri, s.explain(ctx, c, loc, err))
}

func headEntry(uri string, out *s3.HeadObjectOutput) storage.Entry {
	e := storage.Entry{URI: uri, Size: aws.ToInt64(out.ContentLength), ModTime: aws.ToTime(out.LastModified)}
	e.Version, e.ContentHash = versionAndHash(aws.ToString(out.ETag))
	return e
}

var md5ETag = regexp.MustCompile(`^[0-9a-f]{32}$`)

// versionAndHash derives Version and ContentHash from an ETag: the ETag of an
// object written in one PUT (without SSE-KMS/SSE-C) is the MD5 of its bytes;
// a multipart ETag ("<hex>-<parts>") is not, and is labelled "etag:".
func versionAndHash(etag string) (version, hash string) {
	etag = strings.Trim(etag, `"`)
	if etag == "" {
		return "", ""
	}
	if md5ETag.MatchString(etag) {
		return etag, "md5:" + etag
	}
	return etag, "etag:" + etag
}

// serverTime is the server's Date of a response, or now.
func serverTime(md middleware.Metadata) time.Time {
	if t, ok := awsmiddleware.GetServerTime(md); ok && !t.IsZero() {
		return t
	}
	return time.Now()
}

// Open reads length bytes of the object at uri from offset with a ranged
// GET; length < 0 reads to the end. A read cut short by the network resumes
// where it stopped, pinned to the same ETag.
func (s *Store) Open(ctx context.Context, uri string, offset, length int64) (io.ReadCloser, error) {
	loc, c, err := s.parse("open", uri)
	if err != nil {
		return nil, err
	}
	if offset < 0 {
		return nil, storage.NewError("open", uri, storage.ErrOutOfRange, fmt.Errorf("negative offset %d", offset))
	}
	if loc.key == "" {
		return nil, storage.NewError("open", uri, storage.ErrInvalidPath, errors.New("is a directory"))
	}
	r := &reader{ctx: ctx, c: c, loc: loc, uri: uri, pos: offset, end: -1, attempts: s.opts.MaxAttempts}
	if length == 0 {
		// Nothing to read, but the object and the offset must be valid.
		out, err := c.api.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &loc.bucket, Key: &loc.key})
		if err != nil {
			return nil, s.openError(ctx, c, loc, uri, s.explain(ctx, c, loc, err))
		}
		if size := aws.ToInt64(out.ContentLength); offset > size {
			return nil, storage.NewError("open", uri, storage.ErrOutOfRange, fmt.Errorf("offset %d past size %d", offset, size))
		}
		return io.NopCloser(strings.NewReader("")), nil
	}
	if length > 0 {
		r.end = offset + length
	}
	if err := r.open(); err != nil {
		if errors.Is(classify(err), storage.ErrOutOfRange) {
			// S3 refuses a range that starts at the end; that read is
			// valid and empty. Past the end is out of range.
			out, herr := c.api.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &loc.bucket, Key: &loc.key})
			if herr != nil {
				return nil, s.openError(ctx, c, loc, uri, s.explain(ctx, c, loc, herr))
			}
			if size := aws.ToInt64(out.ContentLength); offset == size {
				return io.NopCloser(strings.NewReader("")), nil
			} else {
				return nil, storage.NewError("open", uri, storage.ErrOutOfRange, fmt.Errorf("offset %d past size %d", offset, size))
			}
		}
		return nil, s.openError(ctx, c, loc, uri, err)
	}
	return r, nil
}

// openError tells a missing object from a directory.
func (s *Store) openError(ctx context.Context, c *conn, loc location, uri string, err error) error {
	if errors.Is(classify(err), storage.ErrNotFound) && errorCode(err) != "NoSuchBucket" {
		if isDir, lerr := s.hasChildren(ctx, c, loc); lerr == nil && isDir {
			return storage.NewError("open", uri, storage.ErrInvalidPath, errors.New("is a directory"))
		} else if lerr != nil && errorCode(lerr) == "NoSuchBucket" {
			return c.fail("open", uri, lerr)
		}
	}
	return c.fail("open", uri, err)
}

// Delete removes the object at uri, or the marker object of an empty
// directory. S3 answers a DELETE of a missing key with success, so the key is
// checked first to report ErrNotFound.
func (s *Store) Delete(ctx context.Context, uri string) error {
	loc, c, err := s.parse("delete", uri)
	if err != nil {
		return err
	}
	if loc.key == "" {
		return storage.NewError("delete", uri, storage.ErrPermission, errors.New("refusing to delete a bucket"))
	}
	head, herr := c.api.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &loc.bucket, Key: &loc.key})
	switch {
	case herr == nil && !isMarker(loc.key, aws.ToInt64(head.ContentLength)):
		return s.deleteKey(ctx, c, uri, loc.bucket, loc.key)
	case herr != nil && !errors.Is(classify(herr), storage.ErrNotFound):
		return s.failHead(ctx, c, "delete", uri, loc, herr)
	}
	// A directory: only an empty one (nothing but its own marker) goes.
	prefix := dirPrefix(loc.key)
	out, err := c.api.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: &loc.bucket, Prefix: &prefix, MaxKeys: aws.Int32(2)})
	if err != nil {
		return c.fail("delete", uri, err)
	}
	switch {
	case len(out.Contents) == 0 && len(out.CommonPrefixes) == 0:
		return storage.NewError("delete", uri, storage.ErrNotFound, nil)
	case len(out.Contents) == 1 && len(out.CommonPrefixes) == 0 && aws.ToString(out.Contents[0].Key) == prefix:
		return s.deleteKey(ctx, c, uri, loc.bucket, prefix)
	default:
		return storage.NewError("delete", uri, storage.ErrInvalidPath, errors.New("directory not empty"))
	}
}

func (s *Store) deleteKey(ctx context.Context, c *conn, uri, bucket, key string) error {
	_, err := c.api.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &bucket, Key: &key})
	if err != nil && !errors.Is(classify(err), storage.ErrNotFound) {
		return c.fail("delete", uri, err)
	}
	return nil
}

// MakeDir does nothing: directories are key prefixes and exist while objects
// exist below them. Only the URI is checked.
func (s *Store) MakeDir(ctx context.Context, uri string) error {
	_, _, err := s.parse("mkdir", uri)
	return err
}

// ensureBucket checks once per bucket that it exists, so that Create fails
// early and clearly on a missing bucket. A 403 (HeadBucket needs
// s3:ListBucket, which a write-only policy may lack) is not taken as proof of
// anything: the write itself will tell.
func (s *Store) ensureBucket(ctx context.Context, c *conn, op, uri, bucket string) error {
	if _, ok := s.existing.Load(bucket); ok {
		return nil
	}
	_, err := c.api.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: &bucket})
	switch {
	case err == nil:
		s.existing.Store(bucket, true)
		return nil
	case errors.Is(classify(err), storage.ErrPermission):
		return nil
	default:
		return s.bucketError(ctx, op, uri, bucket, c, err)
	}
}
