package gcs

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"

	gcs "cloud.google.com/go/storage"
	"github.com/googleapis/gax-go/v2"
	"google.golang.org/api/iterator"
	"google.golang.org/api/option"

	"github.com/ferryio/ferry/storage"
)

// Scheme is the URI scheme the store serves.
const Scheme = "gs"

// Store serves gs:// URIs. It is safe for concurrent use.
type Store struct {
	opts    Options
	def     *conn
	buckets map[string]*conn
	// existing remembers buckets whose existence was confirmed, so that
	// Create checks each bucket once per process.
	existing sync.Map
}

var (
	_ storage.Store  = (*Store)(nil)
	_ storage.Copier = (*Store)(nil)
)

type conn struct {
	endpoint    string
	noOverwrite NoOverwrite
	secrets     []string

	// The client is created on first use: without configured credentials
	// it needs Application Default Credentials, and a process that never
	// touches gs:// must not fail for lack of them.
	newClient func() (*gcs.Client, error)
	once      sync.Once
	client    *gcs.Client
	clientErr error
}

// ready creates the client the first time.
func (c *conn) ready() error {
	c.once.Do(func() { c.client, c.clientErr = c.newClient() })
	return c.clientErr
}

// New builds a Store. Key files are read and checked now; the clients are
// created on first use, so that missing Application Default Credentials
// only fail the gs:// operations, as ErrPermission.
func New(ctx context.Context, opts Options) (*Store, error) {
	if err := opts.Validate(); err != nil {
		return nil, fmt.Errorf("gcs storage: %w", err)
	}
	opts = opts.withDefaults()
	s := &Store{opts: opts, buckets: map[string]*conn{}}
	var err error
	if s.def, err = newConn(ctx, opts.Connection, opts); err != nil {
		return nil, fmt.Errorf("gcs storage: %w", err)
	}
	for _, name := range sortedKeys(opts.Buckets) {
		if s.buckets[name], err = newConn(ctx, opts.Buckets[name].inherit(opts.Connection), opts); err != nil {
			return nil, fmt.Errorf("gcs storage, bucket %s: %w", name, err)
		}
	}
	return s, nil
}

// Close releases the clients that were created.
func (s *Store) Close() error {
	var errs []error
	for _, c := range append([]*conn{s.def}, mapValues(s.buckets)...) {
		if c.ready() == nil {
			errs = append(errs, c.client.Close())
		}
	}
	return errors.Join(errs...)
}

func mapValues(m map[string]*conn) []*conn {
	out := make([]*conn, 0, len(m))
	for _, c := range m {
		out = append(out, c)
	}
	return out
}

// credentialTypes are the key-file types accepted; the type is read from
// the file and checked, as the client library asks of callers.
var credentialTypes = map[string]option.CredentialsType{
	"service_account":              option.ServiceAccount,
	"authorized_user":              option.AuthorizedUser,
	"external_account":             option.ExternalAccount,
	"impersonated_service_account": option.ImpersonatedServiceAccount,
}

// keySecrets are the secret values of a JSON key, scrubbed from messages.
func keySecrets(data []byte) []string {
	var fields map[string]any
	if json.Unmarshal(data, &fields) != nil {
		return nil
	}
	var out []string
	for _, k := range []string{"private_key", "private_key_id", "client_secret", "refresh_token"} {
		if v, ok := fields[k].(string); ok && v != "" {
			out = append(out, v)
		}
	}
	return out
}

func credentialOption(data []byte, what string) (option.ClientOption, error) {
	var head struct {
		Type string `json:"type"`
	}
	if err := json.Unmarshal(data, &head); err != nil {
		// The decoder's message would quote part of the key: leave it out.
		return nil, fmt.Errorf("%s is not a JSON key", what)
	}
	t, ok := credentialTypes[head.Type]
	if !ok {
		return nil, fmt.Errorf("%s has credential type %q; expected one of service_account, authorized_user, external_account, impersonated_service_account", what, head.Type)
	}
	return option.WithAuthCredentialsJSON(t, data), nil
}

func newConn(ctx context.Context, c Connection, o Options) (*conn, error) {
	var opts []option.ClientOption
	var secrets []string
	endpoint := "GCS"
	custom := c.Endpoint != "" || os.Getenv("STORAGE_EMULATOR_HOST") != ""
	if c.Endpoint != "" {
		u, err := url.Parse(c.Endpoint)
		if err != nil {
			return nil, fmt.Errorf("endpoint %q: %w", c.Endpoint, err)
		}
		if u.Path == "" || u.Path == "/" {
			u.Path = "/storage/v1/"
		}
		opts = append(opts, option.WithEndpoint(u.String()))
		endpoint = c.Endpoint
	} else if h := os.Getenv("STORAGE_EMULATOR_HOST"); h != "" {
		endpoint = h
	}
	if custom {
		// Emulators serve the JSON API only.
		opts = append(opts, gcs.WithJSONReads())
	}
	switch {
	case c.Anonymous:
		opts = append(opts, option.WithoutAuthentication())
	case c.CredentialsFile != "":
		data, err := os.ReadFile(c.CredentialsFile)
		if err != nil {
			return nil, fmt.Errorf("reading the credentials file: %w", err)
		}
		o, err := credentialOption(data, "credentials file "+c.CredentialsFile)
		if err != nil {
			return nil, err
		}
		opts = append(opts, o)
		secrets = keySecrets(data)
	case c.CredentialsJSON != "":
		o, err := credentialOption([]byte(c.CredentialsJSON), "the credentials JSON")
		if err != nil {
			return nil, err
		}
		opts = append(opts, o)
		secrets = append(keySecrets([]byte(c.CredentialsJSON)), c.CredentialsJSON)
	}
	// The client outlives New's context: it is created with its own.
	newClient := func() (*gcs.Client, error) {
		client, err := gcs.NewClient(context.WithoutCancel(ctx), opts...)
		if err != nil {
			return nil, err
		}
		client.SetRetry(
			gcs.WithBackoff(gax.Backoff{Initial: o.MinBackoff, Max: o.MaxBackoff, Multiplier: 2}),
			gcs.WithMaxAttempts(o.MaxAttempts),
			gcs.WithPolicy(gcs.RetryIdempotent),
		)
		return client, nil
	}
	mode := c.NoOverwrite
	if mode == "" {
		mode = NoOverwriteConditional
		if custom {
			mode = NoOverwriteAuto
		}
	}
	return &conn{endpoint: endpoint, noOverwrite: mode, secrets: secrets, newClient: newClient}, nil
}

// Scheme is "gs".
func (s *Store) Scheme() string { return Scheme }

func (s *Store) conn(bucket string) *conn {
	if c, ok := s.buckets[bucket]; ok {
		return c
	}
	return s.def
}

type location struct {
	bucket string
	key    string
}

var bucketName = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{1,221}[a-z0-9]$`)

func (s *Store) parse(op, uri string) (location, *conn, error) {
	u, err := storage.ParseURI(uri)
	if err != nil {
		return location{}, nil, storage.NewError(op, uri, storage.ErrInvalidPath, err)
	}
	if u.Scheme != Scheme {
		return location{}, nil, storage.NewError(op, uri, storage.ErrInvalidPath, fmt.Errorf("scheme %q is not gs", u.Scheme))
	}
	if !bucketName.MatchString(u.Authority) {
		return location{}, nil, storage.NewError(op, uri, storage.ErrInvalidPath, fmt.Errorf("%q is not a bucket name", u.Authority))
	}
	key := strings.TrimPrefix(u.Path, "/")
	if len(key) > 1024 {
		return location{}, nil, storage.NewError(op, uri, storage.ErrInvalidPath, errors.New("object name longer than 1024 bytes"))
	}
	c := s.conn(u.Authority)
	if err := c.ready(); err != nil {
		msg := "cannot create the GCS client: " + err.Error()
		for _, sec := range c.secrets {
			msg = strings.ReplaceAll(msg, sec, redacted)
		}
		return location{}, nil, storage.NewError(op, uri, storage.ErrPermission, errors.New(strings.Join(strings.Fields(msg), " ")))
	}
	return location{bucket: u.Authority, key: key}, c, nil
}

func (c *conn) object(loc location) *gcs.ObjectHandle {
	return c.client.Bucket(loc.bucket).Object(loc.key)
}

func dirPrefix(key string) string {
	if key == "" || strings.HasSuffix(key, "/") {
		return key
	}
	return key + "/"
}

// entry describes an object. Version is the generation; ContentHash is the
// MD5 when GCS keeps one (not for composite objects), else the CRC32C.
func entry(uri string, a *gcs.ObjectAttrs) storage.Entry {
	e := storage.Entry{URI: uri, Size: a.Size, ModTime: a.Updated, Version: strconv.FormatInt(a.Generation, 10)}
	if len(a.MD5) > 0 {
		e.ContentHash = "md5:" + hex.EncodeToString(a.MD5)
	} else {
		var b [4]byte
		binary.BigEndian.PutUint32(b[:], a.CRC32C)
		e.ContentHash = "crc32c:" + hex.EncodeToString(b[:])
	}
	return e
}

// Stat describes the object at uri, or the directory (prefix) when objects
// exist below it.
func (s *Store) Stat(ctx context.Context, uri string) (storage.Entry, error) {
	loc, c, err := s.parse("stat", uri)
	if err != nil {
		return storage.Entry{}, err
	}
	if loc.key == "" {
		if _, err := c.client.Bucket(loc.bucket).Attrs(ctx); err != nil {
			return storage.Entry{}, c.fail("stat", uri, err)
		}
		return storage.Entry{URI: uri, IsDir: true}, nil
	}
	a, err := c.object(loc).Attrs(ctx)
	switch {
	case err == nil && !isMarker(loc.key, a.Size):
		return entry(uri, a), nil
	case err != nil && !isNotFound(err):
		return storage.Entry{}, c.fail("stat", uri, err)
	}
	isDir, err := hasChildren(ctx, c, loc)
	if err != nil {
		return storage.Entry{}, c.fail("stat", uri, err)
	}
	if !isDir {
		return storage.Entry{}, storage.NewError("stat", uri, storage.ErrNotFound, nil)
	}
	return storage.Entry{URI: uri, IsDir: true}, nil
}

// hasChildren reports whether an object exists below the directory
// loc.key. A missing bucket is ErrBucketNotExist.
func hasChildren(ctx context.Context, c *conn, loc location) (bool, error) {
	it := c.client.Bucket(loc.bucket).Objects(ctx, &gcs.Query{Prefix: dirPrefix(loc.key)})
	it.PageInfo().MaxSize = 1
	_, err := it.Next()
	if errors.Is(err, iterator.Done) {
		return false, nil
	}
	return err == nil, err
}

// isMarker reports a directory placeholder: an empty object whose name
// ends in "/". An object with bytes under such a name is data.
func isMarker(key string, size int64) bool { return strings.HasSuffix(key, "/") && size == 0 }

// Open reads length bytes of the object at uri from offset; length < 0
// reads to the end. The client library resumes a read cut by the network,
// pinned to the object's generation.
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
	if length == 0 {
		a, err := c.object(loc).Attrs(ctx)
		if err != nil {
			return nil, openError(ctx, c, loc, uri, err)
		}
		if offset > a.Size {
			return nil, storage.NewError("open", uri, storage.ErrOutOfRange, fmt.Errorf("offset %d past size %d", offset, a.Size))
		}
		return io.NopCloser(strings.NewReader("")), nil
	}
	r, err := c.object(loc).NewRangeReader(ctx, offset, length)
	if err != nil {
		if errors.Is(classify(err), storage.ErrOutOfRange) {
			// GCS refuses a range that starts at the end; that read is
			// valid and empty.
			a, aerr := c.object(loc).Attrs(ctx)
			if aerr != nil {
				return nil, openError(ctx, c, loc, uri, aerr)
			}
			if offset == a.Size {
				return io.NopCloser(strings.NewReader("")), nil
			}
			return nil, storage.NewError("open", uri, storage.ErrOutOfRange, fmt.Errorf("offset %d past size %d", offset, a.Size))
		}
		return nil, openError(ctx, c, loc, uri, err)
	}
	return &reader{r: r, c: c, uri: uri}, nil
}

// openError tells a missing object from a directory and a missing bucket.
func openError(ctx context.Context, c *conn, loc location, uri string, err error) error {
	if isNotFound(err) {
		isDir, lerr := hasChildren(ctx, c, loc)
		switch {
		case lerr == nil && isDir:
			return storage.NewError("open", uri, storage.ErrInvalidPath, errors.New("is a directory"))
		case lerr != nil && errors.Is(lerr, gcs.ErrBucketNotExist):
			return c.fail("open", uri, lerr)
		}
	}
	return c.fail("open", uri, err)
}

// reader maps read errors onto storage errors.
type reader struct {
	r   *gcs.Reader
	c   *conn
	uri string
}

func (r *reader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if err != nil && !errors.Is(err, io.EOF) {
		return n, r.c.fail("read", r.uri, err)
	}
	return n, err
}

func (r *reader) Close() error { return r.r.Close() }

// Delete removes the object at uri, or the placeholder object of an empty
// directory.
func (s *Store) Delete(ctx context.Context, uri string) error {
	loc, c, err := s.parse("delete", uri)
	if err != nil {
		return err
	}
	if loc.key == "" {
		return storage.NewError("delete", uri, storage.ErrPermission, errors.New("refusing to delete a bucket"))
	}
	if a, err := c.object(loc).Attrs(ctx); err != nil || !isMarker(loc.key, a.Size) {
		if err == nil {
			// Pinned to the generation seen, the delete is idempotent, so
			// the client retries it; a 404 then means a retry of ours.
			err := c.object(loc).If(gcs.Conditions{GenerationMatch: a.Generation}).Delete(ctx)
			if err != nil && !isNotFound(err) {
				if errors.Is(classify(err), storage.ErrExists) {
					return storage.NewError("delete", uri, storage.ErrUnavailable, errors.New("the object was replaced while being deleted"))
				}
				return c.fail("delete", uri, err)
			}
			return nil
		}
		if !isNotFound(err) {
			return c.fail("delete", uri, err)
		}
	}
	prefix := dirPrefix(loc.key)
	it := c.client.Bucket(loc.bucket).Objects(ctx, &gcs.Query{Prefix: prefix})
	it.PageInfo().MaxSize = 2
	var names []string
	for len(names) < 2 {
		a, err := it.Next()
		if errors.Is(err, iterator.Done) {
			break
		}
		if err != nil {
			return c.fail("delete", uri, err)
		}
		names = append(names, a.Name)
	}
	switch {
	case len(names) == 0:
		return storage.NewError("delete", uri, storage.ErrNotFound, nil)
	case len(names) == 1 && names[0] == prefix:
		if err := c.object(location{bucket: loc.bucket, key: prefix}).Delete(ctx); err != nil && !isNotFound(err) {
			return c.fail("delete", uri, err)
		}
		return nil
	default:
		return storage.NewError("delete", uri, storage.ErrInvalidPath, errors.New("directory not empty"))
	}
}

// MakeDir does nothing: directories are name prefixes. Only the URI is
// checked.
func (s *Store) MakeDir(ctx context.Context, uri string) error {
	_, _, err := s.parse("mkdir", uri)
	return err
}

// ensureBucket checks once per bucket that it exists, so that Create fails
// early on a missing bucket. A 403 (bucket metadata needs
// storage.buckets.get, which a writer may lack) proves nothing: the write
// itself will tell.
func (s *Store) ensureBucket(ctx context.Context, c *conn, op, uri, bucket string) error {
	if _, ok := s.existing.Load(bucket); ok {
		return nil
	}
	_, err := c.client.Bucket(bucket).Attrs(ctx)
	switch {
	case err == nil:
		s.existing.Store(bucket, true)
		return nil
	case errors.Is(classify(err), storage.ErrPermission):
		return nil
	default:
		return c.fail(op, uri, err)
	}
}
