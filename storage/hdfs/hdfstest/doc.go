// Package hdfstest starts an HDFS for tests in-process: namenodes (one, or
// an HA pair) speaking Hadoop RPC version 9 with simple authentication and
// the ClientProtocol calls the colinmarc/hdfs client makes, and datanodes
// speaking the data transfer protocol (READ_BLOCK and WRITE_BLOCK, packets
// of CRC-32C checksummed chunks, pipeline acks), on loopback ports chosen
// by the kernel. The namespace is a tree of real directories on disk in
// which every file's entry holds its metadata (inode id, blocks, lease
// holder, times); blocks are files of their own. The block size is small
// by default (1 MiB) so that test files span several blocks.
//
// The message definitions are this package's own (see wire.go): the field
// numbers are those of the protocol, the code covers only what the client
// sends and expects.
//
// Faults fail chosen calls by rule or at a seeded rate: a standby namenode
// (the client fails over to the other one), a dropped namenode
// connection, a lost lease, a complete that must be retried, datanode
// connections reset at once or mid-block, checksum errors.
//
//	srv := hdfstest.Start(t, hdfstest.Config{Namenodes: 2, BlockSize: 64 << 10})
//	store := hdfstest.NewStore(t, srv.Options())
//	uri := "hdfs:///dir/file" // or "hdfs://" + hdfstest.Nameservice + "/dir/file"
//	srv.Failover(1)           // the second namenode becomes active
//
// It is not a full HDFS: no append, truncate, symlinks, snapshots,
// permissions checks, Kerberos or encrypted transfer, and the state that a
// namenode keeps in memory (leases, block reports) does not survive the
// server.
package hdfstest
