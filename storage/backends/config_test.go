package backends_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/ferryio/ferry/storage/backends"
)

const superSecret = "SUPERSECRET123"

const exampleYAML = `
local:
  root: /data
s3:
  region: eu-west-1
  access_key_id: AKIDEXAMPLE
  secret_access_key: SUPERSECRET123
  part_size: 16MiB
  max_attempts: 5
  max_backoff: 2s
  buckets:
    lake:
      endpoint: http://minio.internal:9000
      path_style: true
      access_key_id: minio
      secret_access_key: SUPERSECRET123
      no_overwrite: check
gcs:
  credentials_file: /etc/ferry/gcs-key.json
  chunk_size: 8MiB
  buckets:
    emulated:
      endpoint: http://127.0.0.1:4443
      anonymous: true
    keyed:
      credentials_json: '{"type":"service_account","private_key":"SUPERSECRET123"}'
hdfs:
  user: etl
  namenodes:
    default: [nn1.example:8020]
    prod: [nn1.prod:8020, nn2.prod:8020]
  kerberos:
    principal: etl@EXAMPLE.COM
    password: SUPERSECRET123
    service_principal: nn/_HOST
`

const exampleJSON = `{
  "local": {"root": "/data"},
  "s3": {
    "region": "eu-west-1", "access_key_id": "AKIDEXAMPLE", "secret_access_key": "SUPERSECRET123",
    "part_size": "16MiB", "max_attempts": 5, "max_backoff": "2s",
    "buckets": {"lake": {"endpoint": "http://minio.internal:9000", "path_style": true,
      "access_key_id": "minio", "secret_access_key": "SUPERSECRET123", "no_overwrite": "check"}}
  },
  "gcs": {"credentials_file": "/etc/ferry/gcs-key.json", "chunk_size": 8388608,
    "buckets": {"emulated": {"endpoint": "http://127.0.0.1:4443", "anonymous": true},
      "keyed": {"credentials_json": "{\"type\":\"service_account\",\"private_key\":\"SUPERSECRET123\"}"}}},
  "hdfs": {"user": "etl", "namenodes": {"default": ["nn1.example:8020"], "prod": ["nn1.prod:8020", "nn2.prod:8020"]},
    "kerberos": {"principal": "etl@EXAMPLE.COM", "password": "SUPERSECRET123", "service_principal": "nn/_HOST"}}
}`

func TestParseYAMLAndJSONAgree(t *testing.T) {
	y, err := backends.Parse([]byte(exampleYAML), false)
	if err != nil {
		t.Fatal(err)
	}
	j, err := backends.Parse([]byte(exampleJSON), true)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(y, j) {
		t.Fatalf("YAML and JSON differ:\n%#v\n%#v", y, j)
	}
	if y.S3.PartSize != 16<<20 || y.GCS.ChunkSize != 8<<20 || time.Duration(y.S3.MaxBackoff) != 2*time.Second {
		t.Errorf("sizes and durations: %d %d %v", y.S3.PartSize, y.GCS.ChunkSize, time.Duration(y.S3.MaxBackoff))
	}
	if y.S3.SecretAccessKey.Reveal() != superSecret || y.S3.Buckets["lake"].SecretAccessKey.Reveal() != superSecret {
		t.Error("secrets were not decoded")
	}
	if err := y.Validate(); err != nil {
		t.Errorf("the example does not validate: %v", err)
	}
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct {
		name, doc string
		json      bool
		want      string
	}{
		{"unknown key", "s3:\n  regoin: x\n", false, "regoin"},
		{"unknown JSON key", `{"s3": {"regoin": "x"}}`, true, "regoin"},
		{"bad size", "s3:\n  part_size: SUPERSECRET123\n", false, "line 2: not a size"},
		{"bad duration", "s3:\n  max_backoff: SUPERSECRET123\n", false, "line 2: not a duration"},
		{"bad JSON size", `{"s3": {"part_size": "SUPERSECRET123"}}`, true, "not a size"},
		{"wrong type", "s3:\n  max_attempts: SUPERSECRET123\n", false, "line 2"},
		{"JSON wrong type", `{"s3": {"max_attempts": "SUPERSECRET123"}}`, true, "max_attempts"},
		{"YAML syntax", "s3: [SUPERSECRET123\n", false, "line"},
		{"JSON syntax", `{"s3": SUPERSECRET123}`, true, "syntax"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := backends.Parse([]byte(tc.doc), tc.json)
			if err == nil {
				t.Fatal("accepted")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("%v: does not mention %q", err, tc.want)
			}
			if strings.Contains(err.Error(), superSecret) {
				t.Errorf("the error quotes the value: %v", err)
			}
		})
	}
}

func TestApplyEnv(t *testing.T) {
	env := map[string]string{
		"FERRY_LOCAL_ROOT":           "/srv",
		"FERRY_S3_ENDPOINT":          "http://minio:9000",
		"FERRY_S3_PATH_STYLE":        "true",
		"FERRY_S3_ACCESS_KEY_ID":     "minio",
		"FERRY_S3_SECRET_ACCESS_KEY": superSecret,
		"FERRY_GCS_ENDPOINT":         "http://127.0.0.1:4443",
		"FERRY_GCS_ANONYMOUS":        "1",
		"FERRY_HDFS_NAMENODE":        "nn1:8020, nn2:8020",
		"HADOOP_USER_NAME":           "hadoop",
		"HADOOP_CONF_DIR":            "/etc/hadoop",
		"FERRY_HDFS_KERBEROS_KEYTAB": "/etc/etl.keytab",
	}
	cfg, err := backends.Parse([]byte("s3:\n  endpoint: http://from-file:9000\n  region: eu-west-1\nhdfs:\n  hadoop_conf_dir: /opt/conf\n"), false)
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.ApplyEnv(lookup(env)); err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		what      string
		got, want any
	}{
		{"local root", cfg.Local.Root, "/srv"},
		{"s3 endpoint (env wins)", cfg.S3.Endpoint, "http://minio:9000"},
		{"s3 region (file kept)", cfg.S3.Region, "eu-west-1"},
		{"s3 path style", cfg.S3.PathStyle != nil && *cfg.S3.PathStyle, true},
		{"s3 secret", cfg.S3.SecretAccessKey.Reveal(), superSecret},
		{"gcs anonymous", cfg.GCS.Anonymous, true},
		{"hdfs namenodes", fmt.Sprint(cfg.HDFS.Namenodes[backends.DefaultNamenode]), "[nn1:8020 nn2:8020]"},
		{"hdfs user", cfg.HDFS.User, "hadoop"},
		{"hadoop conf dir (file kept)", cfg.HDFS.HadoopConfDir, "/opt/conf"},
		{"kerberos keytab", cfg.HDFS.Kerberos != nil && cfg.HDFS.Kerberos.KeytabFile == "/etc/etl.keytab", true},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.what, c.got, c.want)
		}
	}
	bad := backends.Config{}
	if err := bad.ApplyEnv(lookup(map[string]string{"FERRY_S3_PATH_STYLE": "sometimes"})); err == nil || !strings.Contains(err.Error(), "FERRY_S3_PATH_STYLE") {
		t.Errorf("a bad boolean: %v", err)
	}
}

func lookup(env map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := env[k]; return v, ok }
}

func TestValidateReportsEverything(t *testing.T) {
	cfg, err := backends.Parse([]byte(`
s3:
  no_overwrite: sometimes
  endpoint: minio:9000
gcs:
  endpoint: 127.0.0.1:4443
hdfs:
  namenodes:
    default: [nn1]
`), false)
	if err != nil {
		t.Fatal(err)
	}
	err = cfg.Validate()
	for _, want := range []string{"no_overwrite", "s3: endpoint", "gcs: endpoint", "no port"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate() = %v; does not mention %q", err, want)
		}
	}
	if _, err := backends.Load(writeFile(t, "bad.yaml", "s3:\n  no_overwrite: sometimes\n"), nil); err == nil {
		t.Error("Load accepted an invalid configuration")
	}
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestSecretsNeverShown prints, logs and marshals a configuration every way
// a program might.
func TestSecretsNeverShown(t *testing.T) {
	cfg, err := backends.Load(writeFile(t, "ferry.yaml", exampleYAML), lookup(map[string]string{
		"FERRY_S3_SESSION_TOKEN": superSecret, "FERRY_GCS_CREDENTIALS_FILE": "",
	}))
	if err != nil {
		t.Fatal(err)
	}
	var outs []string
	for _, f := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x"} {
		outs = append(outs, fmt.Sprintf(f, cfg), fmt.Sprintf(f, &cfg), fmt.Sprintf(f, cfg.S3), fmt.Sprintf(f, cfg.S3.Buckets),
			fmt.Sprintf(f, cfg.HDFS.Kerberos), fmt.Sprintf(f, cfg.S3.SecretAccessKey))
	}
	outs = append(outs, cfg.String())
	js, _ := json.Marshal(cfg)
	ys, _ := yaml.Marshal(cfg)
	outs = append(outs, string(js), string(ys))
	var logs bytes.Buffer
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("config", "cfg", cfg, "secret", cfg.S3.SecretAccessKey, "s3", cfg.S3)
	slog.New(slog.NewTextHandler(&logs, nil)).Info("config", "cfg", cfg, "secret", cfg.S3.SecretAccessKey, "kerberos", cfg.HDFS.Kerberos)
	outs = append(outs, logs.String())
	hexSecret := fmt.Sprintf("%x", superSecret)
	for _, out := range outs {
		if strings.Contains(out, superSecret) || strings.Contains(out, hexSecret) {
			t.Fatalf("a secret is shown: %s", out)
		}
	}
	if !strings.Contains(cfg.String(), "[REDACTED]") || !strings.Contains(cfg.String(), "AKIDEXAMPLE") {
		t.Errorf("String() should show the configuration with secrets redacted:\n%s", cfg)
	}
}
