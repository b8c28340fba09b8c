package backends

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/ferryio/ferry/storage"
)

// Config is the storage configuration of a Ferry process: one section per
// scheme. The zero Config is valid: every backend on, local confined to
// "/", S3, GCS and HDFS with their standard credential sources.
type Config struct {
	// Mounts are the storage locations the process may touch (see
	// storage.Mount): a URI or local path each, "ro:" in front for a
	// read-only one. Env FERRY_MOUNTS (comma-separated) adds to them.
	Mounts []string    `yaml:"mounts" json:"mounts"`
	Local  LocalConfig `yaml:"local" json:"local"`
	S3     S3Config    `yaml:"s3" json:"s3"`
	GCS    GCSConfig   `yaml:"gcs" json:"gcs"`
	HDFS   HDFSConfig  `yaml:"hdfs" json:"hdfs"`
}

// LocalConfig configures file:// URIs.
type LocalConfig struct {
	Disabled bool `yaml:"disabled" json:"disabled"`
	// Root confines file:// URIs. Default "/". Env FERRY_LOCAL_ROOT.
	Root string `yaml:"root" json:"root"`
	// Fsync flushes committed files to disk before Commit returns.
	Fsync bool `yaml:"fsync" json:"fsync"`
}

// S3Connection is how to reach an S3 endpoint: the default, or one bucket's
// override (whose empty fields inherit the default's).
type S3Connection struct {
	Region      string `yaml:"region" json:"region"`
	Endpoint    string `yaml:"endpoint" json:"endpoint"`
	PathStyle   *bool  `yaml:"path_style" json:"path_style"`
	AccessKeyID string `yaml:"access_key_id" json:"access_key_id"`
	// SecretAccessKey and SessionToken are secrets: never printed.
	SecretAccessKey Secret `yaml:"secret_access_key" json:"secret_access_key"`
	SessionToken    Secret `yaml:"session_token" json:"session_token"`
	Profile         string `yaml:"profile" json:"profile"`
	Anonymous       bool   `yaml:"anonymous" json:"anonymous"`
	// NoOverwrite is "auto", "conditional" or "check" (see storage/s3).
	NoOverwrite string `yaml:"no_overwrite" json:"no_overwrite"`
	// Checksums is "auto", "when_supported" or "when_required".
	Checksums string `yaml:"checksums" json:"checksums"`
	CABundle  string `yaml:"ca_bundle" json:"ca_bundle"`
}

// S3Config configures s3:// URIs.
type S3Config struct {
	Disabled     bool `yaml:"disabled" json:"disabled"`
	S3Connection `yaml:",inline"`
	// Buckets overrides the connection per bucket.
	Buckets                map[string]S3Connection `yaml:"buckets" json:"buckets"`
	PartSize               ByteSize                `yaml:"part_size" json:"part_size"`
	Concurrency            int                     `yaml:"concurrency" json:"concurrency"`
	MultipartCopyThreshold ByteSize                `yaml:"multipart_copy_threshold" json:"multipart_copy_threshold"`
	CopyPartSize           ByteSize                `yaml:"copy_part_size" json:"copy_part_size"`
	MaxAttempts            int                     `yaml:"max_attempts" json:"max_attempts"`
	MinBackoff             Duration                `yaml:"min_backoff" json:"min_backoff"`
	MaxBackoff             Duration                `yaml:"max_backoff" json:"max_backoff"`
	ConnectTimeout         Duration                `yaml:"connect_timeout" json:"connect_timeout"`
	ResponseTimeout        Duration                `yaml:"response_timeout" json:"response_timeout"`
}

// GCSConnection is how to reach GCS: the default, or one bucket's override.
type GCSConnection struct {
	Endpoint        string `yaml:"endpoint" json:"endpoint"`
	CredentialsFile string `yaml:"credentials_file" json:"credentials_file"`
	// CredentialsJSON is a key's content: a secret, never printed.
	CredentialsJSON Secret `yaml:"credentials_json" json:"credentials_json"`
	Anonymous       bool   `yaml:"anonymous" json:"anonymous"`
	// NoOverwrite is "conditional" or "auto" (see storage/gcs).
	NoOverwrite string `yaml:"no_overwrite" json:"no_overwrite"`
}

// GCSConfig configures gs:// URIs.
type GCSConfig struct {
	Disabled      bool `yaml:"disabled" json:"disabled"`
	GCSConnection `yaml:",inline"`
	Buckets       map[string]GCSConnection `yaml:"buckets" json:"buckets"`
	ChunkSize     ByteSize                 `yaml:"chunk_size" json:"chunk_size"`
	MaxAttempts   int                      `yaml:"max_attempts" json:"max_attempts"`
	MinBackoff    Duration                 `yaml:"min_backoff" json:"min_backoff"`
	MaxBackoff    Duration                 `yaml:"max_backoff" json:"max_backoff"`
}

// HDFSConfig configures hdfs:// URIs.
type HDFSConfig struct {
	Disabled bool `yaml:"disabled" json:"disabled"`
	// Namenodes maps URI authorities (or "default" for hdfs:///path) to
	// namenode addresses.
	Namenodes              map[string][]string `yaml:"namenodes" json:"namenodes"`
	HadoopConfDir          string              `yaml:"hadoop_conf_dir" json:"hadoop_conf_dir"`
	User                   string              `yaml:"user" json:"user"`
	UseDatanodeHostname    bool                `yaml:"use_datanode_hostname" json:"use_datanode_hostname"`
	DataTransferProtection string              `yaml:"data_transfer_protection" json:"data_transfer_protection"`
	Kerberos               *KerberosConfig     `yaml:"kerberos" json:"kerberos"`
	DialTimeout            Duration            `yaml:"dial_timeout" json:"dial_timeout"`
	StaleTempAge           Duration            `yaml:"stale_temp_age" json:"stale_temp_age"`
	StatChecksum           bool                `yaml:"stat_checksum" json:"stat_checksum"`
}

// KerberosConfig configures Kerberos for HDFS.
type KerberosConfig struct {
	ConfigFile string `yaml:"config_file" json:"config_file"`
	Principal  string `yaml:"principal" json:"principal"`
	Realm      string `yaml:"realm" json:"realm"`
	KeytabFile string `yaml:"keytab_file" json:"keytab_file"`
	CCacheFile string `yaml:"ccache_file" json:"ccache_file"`
	// Password is a secret, never printed.
	Password         Secret `yaml:"password" json:"password"`
	ServicePrincipal string `yaml:"service_principal" json:"service_principal"`
}

// DefaultNamenode is the Namenodes key of the namenode that serves
// hdfs:///path URIs.
const DefaultNamenode = "default"

// Load reads the configuration file at path (YAML, or JSON when the name
// ends in ".json"; an empty path means no file), then applies the
// environment (see ApplyEnv) and validates the result. Unknown keys are
// errors, so that a misspelt option does not go unnoticed.
func Load(path string, lookupEnv func(string) (string, bool)) (Config, error) {
	var cfg Config
	if path != "" {
		data, err := os.ReadFile(path)
		if err != nil {
			return Config{}, fmt.Errorf("storage configuration: %w", err)
		}
		if cfg, err = Parse(data, strings.EqualFold(filepath.Ext(path), ".json")); err != nil {
			return Config{}, fmt.Errorf("storage configuration %s: %w", path, err)
		}
	}
	if lookupEnv != nil {
		if err := cfg.ApplyEnv(lookupEnv); err != nil {
			return Config{}, fmt.Errorf("storage configuration from the environment: %w", err)
		}
	}
	if err := cfg.Validate(); err != nil {
		return Config{}, fmt.Errorf("storage configuration: %w", err)
	}
	return cfg, nil
}

// Parse decodes a configuration document, strictly. Errors never quote
// values, which may be secrets.
func Parse(data []byte, isJSON bool) (Config, error) {
	var cfg Config
	if isJSON {
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&cfg); err != nil {
			return Config{}, quietError(err)
		}
		return cfg, nil
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil && !errors.Is(err, io.EOF) { // io.EOF: an empty document
		return Config{}, quietError(err)
	}
	return cfg, nil
}

// quietError keeps the position and kind of a decoding error but not the
// offending value, which could be a secret in the wrong place.
func quietError(err error) error {
	var ve *valueError
	if errors.As(err, &ve) {
		return ve
	}
	var te *yaml.TypeError
	if errors.As(err, &te) {
		var lines []string
		for _, e := range te.Errors {
			line, _, _ := strings.Cut(e, ": cannot unmarshal")
			lines = append(lines, line+": wrong type of value")
		}
		return errors.New(strings.Join(lines, "; "))
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Errorf("JSON syntax error at byte %d", se.Offset)
	}
	var ue *json.UnmarshalTypeError
	if errors.As(err, &ue) {
		return fmt.Errorf("field %s: wrong type of value (%s expected)", ue.Field, ue.Type)
	}
	msg := err.Error()
	if strings.Contains(msg, "unknown field") || strings.Contains(msg, "not found in type") {
		return err // names the key, not the value
	}
	if i := strings.Index(msg, "line "); i >= 0 && strings.HasPrefix(msg, "yaml:") {
		line, _, _ := strings.Cut(msg[i:], ":")
		return fmt.Errorf("YAML syntax error at %s", line)
	}
	return errors.New("the document is not valid")
}

// ApplyEnv overrides c with the environment; FERRY_* variables win over the
// file. The AWS_*, GOOGLE_APPLICATION_CREDENTIALS, STORAGE_EMULATOR_HOST,
// KRB5_CONFIG and KRB5CCNAME variables are read by the SDKs themselves when
// the configuration leaves the matching field empty.
//
//	FERRY_MOUNTS                          mounts (comma-separated, added to the file's)
//	FERRY_LOCAL_ROOT                      local.root
//	FERRY_S3_ENDPOINT                     s3.endpoint (MinIO, Ceph …)
//	FERRY_S3_REGION                       s3.region
//	FERRY_S3_PATH_STYLE                   s3.path_style (true/false)
//	FERRY_S3_PROFILE                      s3.profile
//	FERRY_S3_ACCESS_KEY_ID                s3.access_key_id
//	FERRY_S3_SECRET_ACCESS_KEY            s3.secret_access_key
//	FERRY_S3_SESSION_TOKEN                s3.session_token
//	FERRY_S3_NO_OVERWRITE                 s3.no_overwrite
//	FERRY_GCS_ENDPOINT                    gcs.endpoint
//	FERRY_GCS_CREDENTIALS_FILE            gcs.credentials_file
//	FERRY_GCS_CREDENTIALS_JSON            gcs.credentials_json
//	FERRY_GCS_ANONYMOUS                   gcs.anonymous (true/false)
//	FERRY_HDFS_NAMENODE                   hdfs.namenodes.default (comma-separated host:port)
//	FERRY_HDFS_USER, else HADOOP_USER_NAME hdfs.user
//	HADOOP_CONF_DIR                       hdfs.hadoop_conf_dir (when unset in the file)
//	FERRY_HDFS_KERBEROS_PRINCIPAL         hdfs.kerberos.principal
//	FERRY_HDFS_KERBEROS_KEYTAB            hdfs.kerberos.keytab_file
//	FERRY_HDFS_KERBEROS_SERVICE_PRINCIPAL hdfs.kerberos.service_principal
func (c *Config) ApplyEnv(lookupEnv func(string) (string, bool)) error {
	var errs []error
	str := func(name string, dst *string) {
		if v, ok := lookupEnv(name); ok && v != "" {
			*dst = v
		}
	}
	secret := func(name string, dst *Secret) {
		if v, ok := lookupEnv(name); ok && v != "" {
			*dst = Secret(v)
		}
	}
	boolean := func(name string, set func(bool)) {
		if v, ok := lookupEnv(name); ok && v != "" {
			b, err := strconv.ParseBool(v)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s=%q is not true or false", name, v))
				return
			}
			set(b)
		}
	}
	str("FERRY_LOCAL_ROOT", &c.Local.Root)
	if v, ok := lookupEnv("FERRY_MOUNTS"); ok {
		c.Mounts = append(c.Mounts, SplitMounts(v)...)
	}

	str("FERRY_S3_ENDPOINT", &c.S3.Endpoint)
	str("FERRY_S3_REGION", &c.S3.Region)
	boolean("FERRY_S3_PATH_STYLE", func(b bool) { c.S3.PathStyle = &b })
	str("FERRY_S3_PROFILE", &c.S3.Profile)
	str("FERRY_S3_ACCESS_KEY_ID", &c.S3.AccessKeyID)
	secret("FERRY_S3_SECRET_ACCESS_KEY", &c.S3.SecretAccessKey)
	secret("FERRY_S3_SESSION_TOKEN", &c.S3.SessionToken)
	str("FERRY_S3_NO_OVERWRITE", &c.S3.NoOverwrite)

	str("FERRY_GCS_ENDPOINT", &c.GCS.Endpoint)
	str("FERRY_GCS_CREDENTIALS_FILE", &c.GCS.CredentialsFile)
	secret("FERRY_GCS_CREDENTIALS_JSON", &c.GCS.CredentialsJSON)
	boolean("FERRY_GCS_ANONYMOUS", func(b bool) { c.GCS.Anonymous = b })

	if v, ok := lookupEnv("FERRY_HDFS_NAMENODE"); ok && v != "" {
		if c.HDFS.Namenodes == nil {
			c.HDFS.Namenodes = map[string][]string{}
		}
		var addrs []string
		for _, a := range strings.Split(v, ",") {
			if a = strings.TrimSpace(a); a != "" {
				addrs = append(addrs, a)
			}
		}
		c.HDFS.Namenodes[DefaultNamenode] = addrs
	}
	if c.HDFS.User == "" {
		str("HADOOP_USER_NAME", &c.HDFS.User)
	}
	str("FERRY_HDFS_USER", &c.HDFS.User)
	if c.HDFS.HadoopConfDir == "" {
		str("HADOOP_CONF_DIR", &c.HDFS.HadoopConfDir)
	}
	for _, kv := range []struct {
		name  string
		field func(*KerberosConfig) *string
	}{
		{"FERRY_HDFS_KERBEROS_PRINCIPAL", func(k *KerberosConfig) *string { return &k.Principal }},
		{"FERRY_HDFS_KERBEROS_KEYTAB", func(k *KerberosConfig) *string { return &k.KeytabFile }},
		{"FERRY_HDFS_KERBEROS_SERVICE_PRINCIPAL", func(k *KerberosConfig) *string { return &k.ServicePrincipal }},
	} {
		if v, ok := lookupEnv(kv.name); ok && v != "" {
			if c.HDFS.Kerberos == nil {
				c.HDFS.Kerberos = &KerberosConfig{}
			}
			*kv.field(c.HDFS.Kerberos) = v
		}
	}
	return errors.Join(errs...)
}

// Validate reports every problem of c at once, as each backend's options
// see them.
func (c Config) Validate() error {
	var errs []error
	if _, err := c.ParsedMounts(); err != nil {
		errs = append(errs, err)
	}
	if !c.S3.Disabled {
		errs = append(errs, c.s3Options().Validate())
	}
	if !c.GCS.Disabled {
		errs = append(errs, c.gcsOptions().Validate())
	}
	if !c.HDFS.Disabled {
		errs = append(errs, c.hdfsOptions().Validate())
	}
	return errors.Join(errs...)
}

// String describes c with every secret redacted (it is the YAML form).
func (c Config) String() string {
	out, err := yaml.Marshal(c)
	if err != nil {
		return "<storage configuration>"
	}
	return string(out)
}

// Format prints c as String does, for every verb, so that no formatting
// of a Config shows a secret.
func (c Config) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(c.String())) }

func sortedNames[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// SplitMounts splits a comma-separated list of mounts, dropping empty
// items.
func SplitMounts(v string) []string {
	var out []string
	for _, m := range strings.Split(v, ",") {
		if m = strings.TrimSpace(m); m != "" {
			out = append(out, m)
		}
	}
	return out
}

// ParsedMounts parses c.Mounts, reporting every bad one.
func (c Config) ParsedMounts() ([]storage.Mount, error) {
	var out []storage.Mount
	var errs []error
	for _, s := range c.Mounts {
		m, err := storage.ParseMount(s)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, m)
	}
	return out, errors.Join(errs...)
}
