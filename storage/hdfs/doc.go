// Package hdfs is the storage backend for hdfs:// URIs, through the pure-Go
// client github.com/colinmarc/hdfs/v2 (namenode RPC and datanode transfer,
// no JVM).
//
// # Naming and connections
//
// hdfs://namenode:8020/path names a file or directory. The authority is a
// namenode address (port 8020 when none is given), or a name configured in
// Options.Namenodes (a logical nameservice and its HA addresses); the empty
// authority of hdfs:///path uses Namenodes[""] or fs.defaultFS from
// HadoopConfDir. One connection per authority is made on first use and
// kept. The user is Options.User (default: the OS user); with
// Options.Kerberos the identity comes from a keytab, a credential cache or a
// password, through github.com/jcmturner/gokrb5/v8, which the client
// library uses and which is in the module graph: nothing else is needed.
//
// # Writes
//
// Create writes ".<name>.ferry-partial" next to the destination and Commit
// renames it into place, so a reader never sees a partial file under the
// final name and a crashed writer leaves only the partial file, which
// listings skip. The partial name is fixed per destination: a retry reuses
// it once the dead writer's lease is gone and the file is older than
// Options.StaleTempAge; while a live writer holds it a unique name is used.
// Close is retried while HDFS still replicates the last block.
//
// Without Overwrite, Create and Commit check that the name is free. The
// client library exposes only the overwriting rename (rename2 with
// OVERWRITE), so a writer that takes the name between the check at Commit
// and the rename is replaced: that window is the race.
//
// # Listing
//
// Entries come in byte order of their path relative to the listed
// directory (a directory's name counts with a trailing "/"), streamed from
// the namenode's batched, name-ordered listings without reading whole
// directories into memory; see Store.List for cursors.
//
// # Versions and hashes
//
// Version is the inode id, size and modification time: every write makes a
// new inode (partial file, then rename). ContentHash is empty, except from
// Stat with Options.StatChecksum, which asks the datanodes for HDFS's
// MD5-of-MD5-of-CRC32C checksum ("hdfs-md5md5crc32c:<hex>"); it depends on
// the block layout, so it only compares with files written the same way.
//
// # Limits
//
// The client library takes no context: a call in progress is not
// cancelled, only bounded by Options.DialTimeout when connecting. There is
// no server-side copy (HDFS has none), so the store is not a
// storage.Copier. The conformance suite runs against a real namenode only
// when FERRY_TEST_HDFS names one (host:port); otherwise the store's logic
// runs over a local stand-in for the namenode.
package hdfs
