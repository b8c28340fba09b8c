package hdfs

import (
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"
)

// Options configure a Store.
type Options struct {
	// Namenodes maps a URI authority to namenode addresses (host:port): a
	// logical name ("mycluster") to its HA pair, or "" to the namenode that
	// serves hdfs:///path URIs. An authority not listed is dialed as
	// written (hdfs://nn1:8020/… dials nn1:8020).
	Namenodes map[string][]string
	// HadoopConfDir, when set, is read like the Hadoop client does
	// (core-site.xml, hdfs-site.xml): fs.defaultFS and the
	// dfs.namenode.rpc-address.* keys supply Namenodes[""] when it is not
	// set, dfs.namenode.kerberos.principal supplies
	// Kerberos.ServicePrincipal, and dfs.client.use.datanode.hostname and
	// dfs.data.transfer.protection their fields.
	HadoopConfDir string
	// User is the HDFS user to act as when Kerberos is off. Default: the
	// operating-system user.
	User string
	// UseDatanodeHostname dials datanodes by hostname instead of IP
	// (multi-homed clusters).
	UseDatanodeHostname bool
	// DataTransferProtection is "", "authentication", "integrity" or
	// "privacy", as dfs.data.transfer.protection.
	DataTransferProtection string
	// Kerberos, when set, authenticates with Kerberos.
	Kerberos *Kerberos
	// DialTimeout bounds connecting to a namenode or datanode. Default 10s.
	DialTimeout time.Duration
	// StaleTempAge is the age after which a leftover ".<name>.ferry-partial"
	// file (from a crashed writer; its lease has long expired) is reused by
	// the next write of that name instead of being left aside. Default 1h.
	StaleTempAge time.Duration
	// StatChecksum makes Stat fill ContentHash with HDFS's MD5-of-MD5-of-
	// CRC32C file checksum ("hdfs-md5md5crc32c:<hex>"). It asks every
	// datanode holding a block, so it is off by default; listings never
	// compute it. The value depends on the block size and bytes per
	// checksum, so it compares only with files of the same layout.
	StatChecksum bool
	// ReplayLimit is how many bytes of a file being written are kept in
	// memory so that the write can be redone when a datanode fails: the
	// client library does not recover a block pipeline, so a datanode
	// lost mid-block fails the write. A file up to this size is written
	// again to a new partial file (up to three times) and the caller sees
	// nothing; a larger one fails with ErrUnavailable and is redone by
	// the caller. Default 8 MiB; negative turns replays off.
	ReplayLimit int64
}

// Kerberos configures Kerberos authentication. Credentials come from a
// keytab, a credential cache, or a password, in that order of preference.
type Kerberos struct {
	// ConfigFile is krb5.conf. Default KRB5_CONFIG, else /etc/krb5.conf.
	ConfigFile string
	// Principal is the client principal, "user" or "user@REALM".
	Principal string
	// Realm is the realm when Principal has none. Default: the
	// configuration's default realm.
	Realm string
	// KeytabFile is a keytab holding the principal's key.
	KeytabFile string
	// CCacheFile is a credential cache (from kinit). Default KRB5CCNAME
	// when neither a keytab nor a password is given.
	CCacheFile string
	// Password of the principal. Secret.
	Password string
	// ServicePrincipal is the namenode's principal without the realm,
	// "nn/_HOST" style (dfs.namenode.kerberos.principal).
	ServicePrincipal string
}

const (
	defaultDialTimeout  = 10 * time.Second
	defaultStaleTempAge = time.Hour
	defaultReplayLimit  = 8 << 20
)

func (o Options) withDefaults() Options {
	if o.DialTimeout == 0 {
		o.DialTimeout = defaultDialTimeout
	}
	if o.StaleTempAge == 0 {
		o.StaleTempAge = defaultStaleTempAge
	}
	if o.ReplayLimit == 0 {
		o.ReplayLimit = defaultReplayLimit
	}
	return o
}

// Validate reports every problem of o at once.
func (o Options) Validate() error {
	var errs []error
	for _, name := range sortedKeys(o.Namenodes) {
		if len(o.Namenodes[name]) == 0 {
			errs = append(errs, fmt.Errorf("hdfs: namenode %q has no address", name))
		}
		for _, a := range o.Namenodes[name] {
			if !strings.Contains(a, ":") {
				errs = append(errs, fmt.Errorf("hdfs: namenode address %q of %q has no port", a, name))
			}
		}
	}
	switch o.DataTransferProtection {
	case "", "authentication", "integrity", "privacy":
	default:
		errs = append(errs, fmt.Errorf("hdfs: data transfer protection %q is not one of authentication, integrity, privacy", o.DataTransferProtection))
	}
	if o.DialTimeout < 0 || o.StaleTempAge < 0 {
		errs = append(errs, errors.New("hdfs: timeouts must not be negative"))
	}
	if k := o.Kerberos; k != nil {
		if k.Principal == "" && k.CCacheFile == "" {
			errs = append(errs, errors.New("hdfs: kerberos needs a principal (or a credential cache that names one)"))
		}
		if k.KeytabFile != "" && k.Password != "" {
			errs = append(errs, errors.New("hdfs: kerberos keytab and password exclude each other"))
		}
	}
	return errors.Join(errs...)
}

func sortedKeys(m map[string][]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// String describes k without its password.
func (k Kerberos) String() string {
	pw := ""
	if k.Password != "" {
		pw = "[REDACTED]"
	}
	return fmt.Sprintf("{ConfigFile:%s Principal:%s Realm:%s KeytabFile:%s CCacheFile:%s Password:%s ServicePrincipal:%s}",
		k.ConfigFile, k.Principal, k.Realm, k.KeytabFile, k.CCacheFile, pw, k.ServicePrincipal)
}

// Format prints k as String does, for every verb.
func (k Kerberos) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, k.String()) }

// String describes o without secrets.
func (o Options) String() string {
	kerb := "<nil>"
	if o.Kerberos != nil {
		kerb = o.Kerberos.String()
	}
	return fmt.Sprintf("{Namenodes:%v HadoopConfDir:%s User:%s UseDatanodeHostname:%v DataTransferProtection:%s Kerberos:%s DialTimeout:%v StaleTempAge:%v StatChecksum:%v ReplayLimit:%d}",
		o.Namenodes, o.HadoopConfDir, o.User, o.UseDatanodeHostname, o.DataTransferProtection, kerb, o.DialTimeout, o.StaleTempAge, o.StatChecksum, o.ReplayLimit)
}

// Format prints o as String does, for every verb.
func (o Options) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, o.String()) }
