package hdfstest

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync/atomic"
)

// Hadoop RPC constants.
const (
	rpcVersion      = 9
	authNone        = 0
	handshakeCallID = -3
	maxRPCPacket    = 64 << 20
	// RpcResponseHeaderProto status and error codes.
	rpcSuccess         = 0
	rpcError           = 1
	rpcFatal           = 2
	errApplication     = 1
	errNoSuchMethod    = 2
	fatalInvalidHeader = 12
	clientProtocol     = "org.apache.hadoop.hdfs.protocol.ClientProtocol"
)

// namenode is one namenode of the server: a listener speaking Hadoop RPC
// over the shared namespace.
type namenode struct {
	conns
	index int
	down  atomic.Bool
}

func (nn *namenode) serve() { nn.conns.serve(func() bool { return !nn.down.Load() }, nn.serveConn) }

// rpcConn is the state of one client connection.
type rpcConn struct {
	user string
}

// call is one decoded request.
type call struct {
	id     int32
	method string
	req    fields
}

var errDrop = errors.New("connection dropped by a fault")

func (nn *namenode) serveConn(c net.Conn) error {
	r := bufio.NewReader(c)
	var hdr [7]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return err
	}
	if string(hdr[:4]) != "hrpc" || hdr[4] != rpcVersion || hdr[6] != authNone {
		// A version or an authentication this server does not speak:
		// a fatal answer, as a namenode gives, then the connection ends.
		_ = writeRPC(c, msg{}.uint(1, uint64(^uint32(0))).uint(2, rpcFatal).
			str(4, "org.apache.hadoop.ipc.RPC$VersionMismatch").
			str(5, "this test namenode speaks RPC version 9 with simple authentication only").
			uint(6, fatalInvalidHeader), nil)
		return errors.New("bad connection header")
	}
	st := &rpcConn{}
	for {
		var n uint32
		if err := binary.Read(r, binary.BigEndian, &n); err != nil {
			return err
		}
		if n > maxRPCPacket {
			return fmt.Errorf("rpc packet of %d bytes", n)
		}
		packet := make([]byte, n)
		if _, err := io.ReadFull(r, packet); err != nil {
			return err
		}
		parts, err := splitDelimited(packet)
		if err != nil || len(parts) < 2 {
			return errMalformed
		}
		rh, err := decode(parts[0])
		if err != nil {
			return err
		}
		id := int32(rh.sint(3))
		if id == handshakeCallID {
			ctx, err := decode(parts[1])
			if err != nil {
				return err
			}
			st.user = ctx.sub(2).str(1)
			continue
		}
		if id < 0 || len(parts) < 3 {
			continue // pings and other control calls: nothing to answer
		}
		h, err := decode(parts[1])
		if err != nil {
			return err
		}
		req, err := decode(parts[2])
		if err != nil {
			return err
		}
		resp, err := nn.handle(st, call{id: id, method: h.str(1), req: req})
		if errors.Is(err, errDrop) {
			return err
		}
		if err := nn.reply(c, id, resp, err); err != nil {
			return err
		}
	}
}

func writeRPC(w io.Writer, header msg, body msg) error {
	out := delimited(header)
	if body != nil {
		out = append(out, delimited(body)...)
	}
	frame := binary.BigEndian.AppendUint32(make([]byte, 0, 4+len(out)), uint32(len(out)))
	_, err := w.Write(append(frame, out...))
	return err
}

func (nn *namenode) reply(w io.Writer, id int32, resp msg, err error) error {
	h := msg{}.uint(1, uint64(uint32(id)))
	if err == nil {
		if resp == nil {
			resp = msg{}
		}
		return writeRPC(w, h.uint(2, rpcSuccess).uint(3, rpcVersion), resp)
	}
	var re *remoteError
	if !errors.As(err, &re) {
		re = &remoteError{class: excIO, msg: err.Error()}
	}
	code := uint64(errApplication)
	if re.class == excNoSuchMethod {
		code = errNoSuchMethod
	}
	h = h.uint(2, rpcError).uint(3, rpcVersion).str(4, re.class).str(5, re.msg).uint(6, code)
	return writeRPC(w, h, nil)
}

// pathOf is the path a request names, for fault rules.
func pathOf(c call) string {
	switch c.method {
	case "getContentSummary":
		return c.req.str(1)
	case "renewLease", "getServerDefaults":
		return ""
	}
	return c.req.str(1)
}

// handle runs one call, through the fault rules first.
func (nn *namenode) handle(st *rpcConn, c call) (msg, error) {
	srv := nn.srv
	f := srv.faults.namenode(Call{Namenode: nn.index, Method: c.method, Path: pathOf(c), User: st.user}, srv.Active() != nn.index)
	switch f {
	case Standby:
		return nil, exception(excStandby, "Operation category %s is not supported in state standby. Visit https://s.apache.org/sbnn-error", category(c.method))
	case Drop:
		return nil, errDrop
	case LeaseLost:
		if c.method == "addBlock" || c.method == "complete" || c.method == "create" {
			return nil, exception(excLeaseExpired, "No lease on %s: the lease was lost (fault injected)", c.req.str(1))
		}
	case Replicating:
		if c.method == "complete" {
			// The last block is committed, as a namenode does, but not
			// complete yet: a retry may come without it.
			err := nn.srv.ns.commit(c.req.str(1), c.req.str(2), c.req.uint(4), c.req.sub(3))
			return msg{}.boolean(1, false), err
		}
	}
	resp, err := nn.dispatch(st, c)
	if f == DropAfter {
		return nil, errDrop
	}
	return resp, err
}

func category(method string) string {
	switch method {
	case "getFileInfo", "getListing", "getBlockLocations", "getContentSummary", "getServerDefaults":
		return "READ"
	}
	return "WRITE"
}

func (nn *namenode) dispatch(st *rpcConn, c call) (msg, error) {
	srv, ns, q := nn.srv, nn.srv.ns, c.req
	switch c.method {
	case "getFileInfo":
		s, err := ns.getFileInfo(q.str(1))
		if err != nil || s == nil {
			return msg{}, err
		}
		s.name = ""
		return msg{}.sub(1, srv.fileStatus(s)), nil
	case "getListing":
		list, remaining, ok, err := ns.listing(q.str(1), q.bytes(2), srv.cfg.ListLimit)
		if err != nil || !ok {
			return msg{}, err
		}
		dl := msg{}
		for _, s := range list {
			dl = dl.sub(1, srv.fileStatus(s))
		}
		return msg{}.sub(1, dl.uint(2, uint64(remaining))), nil
	case "mkdirs":
		if err := ns.mkdirs(q.str(1), q.boolean(3)); err != nil {
			return nil, err
		}
		return msg{}.boolean(1, true), nil
	case "create":
		perm := uint32(q.sub(2).uint(1))
		if perm == 0 {
			perm = defaultPermFile
		}
		repl := uint32(q.uint(6))
		if repl == 0 || int(repl) > len(srv.datanodes) {
			repl = uint32(len(srv.datanodes))
		}
		s, err := ns.create(q.str(1), q.str(3), st.user, uint32(q.uint(4)), q.boolean(5), repl, q.uint(7), perm)
		if err != nil {
			return nil, err
		}
		return msg{}.sub(1, srv.fileStatus(s)), nil
	case "addBlock":
		m, b, off, err := ns.addBlock(q.str(1), q.str(2), q.uint(5), q.sub(3))
		if err != nil {
			return nil, err
		}
		return msg{}.sub(1, srv.locatedBlock(m, b, off)), nil
	case "updateBlockForPipeline":
		// The client calls it after every block; a pipeline recovery
		// would bump the generation stamp, a completed block keeps it.
		b := q.sub(1)
		return msg{}.sub(1, srv.locatedBlock(&fileMeta{Repl: uint32(len(srv.datanodes))},
			blockMeta{ID: b.uint(2), GS: b.uint(3), Len: int64(b.uint(4))}, 0)), nil
	case "complete":
		ok, err := ns.complete(q.str(1), q.str(2), q.uint(4), q.sub(3))
		if err != nil {
			return nil, err
		}
		return msg{}.boolean(1, ok), nil
	case "rename":
		err := ns.rename(q.str(1), q.str(2), false)
		var re *remoteError
		if errors.As(err, &re) {
			return msg{}.boolean(1, false), nil // the old rename answers false
		}
		return msg{}.boolean(1, err == nil), err
	case "rename2":
		return msg{}, ns.rename(q.str(1), q.str(2), q.boolean(3))
	case "delete":
		ok, err := ns.delete(q.str(1), q.boolean(2))
		if err != nil {
			return nil, err
		}
		return msg{}.boolean(1, ok), nil
	case "getBlockLocations":
		s, err := ns.getFileInfo(q.str(1))
		if err != nil {
			return nil, err
		}
		if s == nil || s.dir {
			return nil, exception(excFileNotFound, "File does not exist: %s", q.str(1))
		}
		return msg{}.sub(1, srv.locatedBlocks(s.meta, int64(q.uint(2)), int64(q.uint(3)))), nil
	case "getServerDefaults":
		d := msg{}.uint(1, uint64(srv.cfg.BlockSize)).uint(2, bytesPerChecksum).uint(3, 64<<10).
			uint(4, uint64(len(srv.datanodes))).uint(5, 4096).boolean(6, false).uint(7, 0).uint(8, checksumCRC32C)
		return msg{}.sub(1, d), nil
	case "renewLease":
		ns.renewLease(q.str(1))
		return msg{}, nil
	case "getContentSummary":
		length, files, dirs, err := ns.contentSummary(q.str(1))
		if err != nil {
			return nil, err
		}
		s := msg{}.uint(1, length).uint(2, files).uint(3, dirs).uint(4, ^uint64(0)).
			uint(5, length*uint64(len(srv.datanodes))).uint(6, ^uint64(0))
		return msg{}.sub(1, s), nil
	case "setTimes":
		return msg{}, ns.setTimes(q.str(1), int64(q.uint(2)), int64(q.uint(3)))
	case "setPermission", "setOwner", "setReplication":
		s, err := ns.getFileInfo(q.str(1))
		if err == nil && s == nil {
			err = exception(excFileNotFound, "File does not exist: %s", q.str(1))
		}
		if c.method == "setReplication" {
			return msg{}.boolean(1, err == nil), err
		}
		return msg{}, err
	}
	return nil, exception(excNoSuchMethod, "Unknown method %s called on %s protocol.", c.method, clientProtocol)
}

// fileStatus is an HdfsFileStatusProto.
func (srv *Server) fileStatus(s *status) msg {
	m := msg{}
	if s.dir {
		m = m.uint(1, 1).bytes(2, []byte(s.name)).uint(3, 0).sub(4, msg{}.uint(1, defaultPermDirectory)).
			str(5, srv.cfg.Superuser).str(6, "supergroup").uint(7, uint64(s.mtime)).uint(8, 0).
			uint(10, 0).uint(11, 0).uint(13, s.id)
		return m
	}
	f := s.meta
	return m.uint(1, 2).bytes(2, []byte(s.name)).uint(3, uint64(f.length())).sub(4, msg{}.uint(1, uint64(f.Perm))).
		str(5, f.Owner).str(6, "supergroup").uint(7, uint64(f.MTime)).uint(8, uint64(f.ATime)).
		uint(10, uint64(f.Repl)).uint(11, f.BlockSize).uint(13, f.ID).uint(14, 0)
}

// datanodeInfo is a DatanodeInfoProto.
func (dn *datanode) info() msg {
	addr := dn.ln.Addr().(*net.TCPAddr)
	id := msg{}.str(1, addr.IP.String()).str(2, "localhost").str(3, dn.uuid).uint(4, uint64(addr.Port)).
		uint(5, 0).uint(6, 0)
	return msg{}.sub(1, id).uint(2, 1<<40).uint(3, 0).uint(4, 1<<40).str(8, "/default-rack")
}

// locatedBlock is a LocatedBlockProto: the block at offset off of the file,
// on as many datanodes as the file's replication, starting with a
// different one for each block.
func (srv *Server) locatedBlock(f *fileMeta, b blockMeta, off int64) msg {
	eb := msg{}.str(1, blockPool).uint(2, b.ID).uint(3, b.GS).uint(4, uint64(b.Len))
	m := msg{}.sub(1, eb).uint(2, uint64(off))
	n := int(f.Repl)
	if n <= 0 || n > len(srv.datanodes) {
		n = len(srv.datanodes)
	}
	for i := 0; i < n; i++ {
		m = m.sub(3, srv.datanodes[(int(b.ID)+i)%len(srv.datanodes)].info())
	}
	token := msg{}.bytes(1, nil).bytes(2, nil).str(3, "").str(4, "")
	return m.boolean(4, false).sub(5, token)
}

// locatedBlocks is a LocatedBlocksProto of the blocks overlapping
// [off, off+length).
func (srv *Server) locatedBlocks(f *fileMeta, off, length int64) msg {
	m := msg{}.uint(1, uint64(f.length()))
	var pos int64
	for _, b := range f.Blocks {
		if pos+b.Len > off && pos < off+length {
			m = m.sub(2, srv.locatedBlock(f, b, pos))
		}
		pos += b.Len
	}
	return m.boolean(3, f.Open).boolean(5, !f.Open)
}
