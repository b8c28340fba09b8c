package backends

import (
	"context"
	"fmt"
	"time"

	"github.com/ferryio/ferry/storage"
	"github.com/ferryio/ferry/storage/gcs"
	"github.com/ferryio/ferry/storage/hdfs"
	"github.com/ferryio/ferry/storage/local"
	"github.com/ferryio/ferry/storage/s3"
)

// NewResolver builds the stores cfg enables — file, s3, gs and hdfs — and a
// resolver over them, confined to cfg.Mounts when there are any. No store
// connects anywhere yet: S3 credentials are resolved on the first request,
// GCS clients and HDFS connections are made on first use, so a process that
// never touches a scheme does not need its credentials.
func NewResolver(ctx context.Context, cfg Config) (*storage.Resolver, error) {
	if len(cfg.Mounts) > 0 {
		return NewConfinedResolver(ctx, cfg)
	}
	stores, err := newStores(ctx, cfg)
	if err != nil {
		return nil, err
	}
	return storage.NewResolver(stores...), nil
}

// NewConfinedResolver is NewResolver always confined to cfg.Mounts: with no
// mount every URI is refused. Ferry's processes use it.
func NewConfinedResolver(ctx context.Context, cfg Config) (*storage.Resolver, error) {
	stores, err := newStores(ctx, cfg)
	if err != nil {
		return nil, err
	}
	mounts, err := cfg.ParsedMounts()
	if err != nil {
		return nil, fmt.Errorf("storage configuration: %w", err)
	}
	return storage.NewConfinedResolver(mounts, stores...)
}

func newStores(ctx context.Context, cfg Config) ([]storage.Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("storage configuration: %w", err)
	}
	var stores []storage.Store
	if !cfg.Local.Disabled {
		st, err := local.New(local.Options{Root: cfg.Local.Root, Fsync: cfg.Local.Fsync})
		if err != nil {
			return nil, err
		}
		stores = append(stores, st)
	}
	if !cfg.S3.Disabled {
		st, err := s3.New(ctx, cfg.s3Options())
		if err != nil {
			return nil, err
		}
		stores = append(stores, st)
	}
	if !cfg.GCS.Disabled {
		st, err := gcs.New(ctx, cfg.gcsOptions())
		if err != nil {
			return nil, err
		}
		stores = append(stores, st)
	}
	if !cfg.HDFS.Disabled {
		st, err := hdfs.New(cfg.hdfsOptions())
		if err != nil {
			return nil, err
		}
		stores = append(stores, st)
	}
	return stores, nil
}

func (c S3Connection) options() s3.Connection {
	return s3.Connection{
		Region: c.Region, Endpoint: c.Endpoint, PathStyle: c.PathStyle,
		AccessKeyID: c.AccessKeyID, SecretAccessKey: c.SecretAccessKey.Reveal(), SessionToken: c.SessionToken.Reveal(),
		Profile: c.Profile, Anonymous: c.Anonymous,
		NoOverwrite: s3.NoOverwrite(c.NoOverwrite), Checksums: s3.Checksums(c.Checksums), CABundle: c.CABundle,
	}
}

func (c Config) s3Options() s3.Options {
	o := s3.Options{
		Connection:             c.S3.options(),
		PartSize:               int64(c.S3.PartSize),
		Concurrency:            c.S3.Concurrency,
		MultipartCopyThreshold: int64(c.S3.MultipartCopyThreshold),
		CopyPartSize:           int64(c.S3.CopyPartSize),
		MaxAttempts:            c.S3.MaxAttempts,
		MinBackoff:             time.Duration(c.S3.MinBackoff),
		MaxBackoff:             time.Duration(c.S3.MaxBackoff),
		ConnectTimeout:         time.Duration(c.S3.ConnectTimeout),
		ResponseTimeout:        time.Duration(c.S3.ResponseTimeout),
	}
	if len(c.S3.Buckets) > 0 {
		o.Buckets = map[string]s3.Connection{}
		for _, name := range sortedNames(c.S3.Buckets) {
			o.Buckets[name] = c.S3.Buckets[name].options()
		}
	}
	return o
}

func (c GCSConnection) options() gcs.Connection {
	return gcs.Connection{
		Endpoint: c.Endpoint, CredentialsFile: c.CredentialsFile, CredentialsJSON: c.CredentialsJSON.Reveal(),
		Anonymous: c.Anonymous, NoOverwrite: gcs.NoOverwrite(c.NoOverwrite),
	}
}

func (c Config) gcsOptions() gcs.Options {
	o := gcs.Options{
		Connection:  c.GCS.options(),
		ChunkSize:   int(c.GCS.ChunkSize),
		MaxAttempts: c.GCS.MaxAttempts,
		MinBackoff:  time.Duration(c.GCS.MinBackoff),
		MaxBackoff:  time.Duration(c.GCS.MaxBackoff),
	}
	if len(c.GCS.Buckets) > 0 {
		o.Buckets = map[string]gcs.Connection{}
		for _, name := range sortedNames(c.GCS.Buckets) {
			o.Buckets[name] = c.GCS.Buckets[name].options()
		}
	}
	return o
}

func (c Config) hdfsOptions() hdfs.Options {
	o := hdfs.Options{
		HadoopConfDir:          c.HDFS.HadoopConfDir,
		User:                   c.HDFS.User,
		UseDatanodeHostname:    c.HDFS.UseDatanodeHostname,
		DataTransferProtection: c.HDFS.DataTransferProtection,
		DialTimeout:            time.Duration(c.HDFS.DialTimeout),
		StaleTempAge:           time.Duration(c.HDFS.StaleTempAge),
		StatChecksum:           c.HDFS.StatChecksum,
	}
	if len(c.HDFS.Namenodes) > 0 {
		o.Namenodes = map[string][]string{}
		for name, addrs := range c.HDFS.Namenodes {
			if name == DefaultNamenode {
				name = ""
			}
			o.Namenodes[name] = addrs
		}
	}
	if k := c.HDFS.Kerberos; k != nil {
		o.Kerberos = &hdfs.Kerberos{
			ConfigFile: k.ConfigFile, Principal: k.Principal, Realm: k.Realm, KeytabFile: k.KeytabFile,
			CCacheFile: k.CCacheFile, Password: k.Password.Reveal(), ServicePrincipal: k.ServicePrincipal,
		}
	}
	return o
}
