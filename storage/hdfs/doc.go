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
// The client library does not recover a block pipeline: a datanode that
// fails mid-block fails the write. Files up to Options.ReplayLimit are kept
// in memory while written and written again to a new partial file when a
// datanode, the namenode or the lease fails (three times at most); larger
// files fail with ErrUnavailable for the caller to retry. Reads that lose
// their datanodes open the file again and go on from their offset, as long
// as the file is the same (inode, size, modification time).
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
// storage.Copier. The client keeps a namenode that failed aside for 5 s,
// so a second HA failover within 5 s fails calls (ErrUnavailable) until
// then.
//
// # Tests
//
// The conformance suite runs against storage/hdfs/hdfstest, an in-process
// server speaking the namenode RPC and data transfer protocols, and
// against a real namenode when FERRY_TEST_HDFS names one (host:port).
package hdfs
