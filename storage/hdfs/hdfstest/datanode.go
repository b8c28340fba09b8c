package hdfstest

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"net"
	"os"
	"time"
)

// Data transfer protocol constants.
const (
	dataTransferVersion = 28
	opWriteBlock        = 0x50
	opReadBlock         = 0x51
	blockPool           = "BP-ferry-test"
	bytesPerChecksum    = 512
	checksumCRC32C      = 2
	readPacketSize      = 64 << 10
	maxPacket           = 16 << 20
	// Status values of BlockOpResponseProto and PipelineAckProto.
	statusSuccess       = 0
	statusError         = 1
	statusErrorChecksum = 2
	statusErrorInvalid  = 3
	heartbeatSeqno      = -1
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// datanode is one datanode of the server. All datanodes store their
// replicas in the same block directory (a block is written once, through
// the first datanode of its pipeline) and answer for every replica, so a
// reader can fail over from one to another; faults are per transfer.
type datanode struct {
	conns
	index int
	uuid  string
}

func (dn *datanode) serve() { dn.conns.serve(func() bool { return true }, dn.serveConn) }

// reset cuts c so that the client sees a connection reset, not an orderly
// end.
func reset(c net.Conn) error {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = c.Close()
	return errors.New("connection reset by a fault")
}

func (dn *datanode) serveConn(c net.Conn) error {
	r := bufio.NewReader(c)
	var hdr [3]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return err
	}
	if binary.BigEndian.Uint16(hdr[:2]) != dataTransferVersion {
		return fmt.Errorf("data transfer version %d", binary.BigEndian.Uint16(hdr[:2]))
	}
	b, err := readDelimited(r, r, 1<<20)
	if err != nil {
		return err
	}
	op, err := decode(b)
	if err != nil {
		return err
	}
	block := op.sub(1).sub(1).sub(1) // header.baseHeader.block
	t := Transfer{Datanode: dn.index, Block: block.uint(2), Path: dn.srv.ns.blockFile(block.uint(2))}
	switch hdr[2] {
	case opReadBlock:
		t.Op = "read"
		return dn.readBlock(c, op, block, dn.srv.faults.datanode(t))
	case opWriteBlock:
		t.Op = "write"
		return dn.writeBlock(c, r, op, block, dn.srv.faults.datanode(t))
	}
	_, _ = c.Write(delimited(msg{}.uint(1, statusErrorInvalid).str(5, fmt.Sprintf("op %#x is not supported", hdr[2]))))
	return fmt.Errorf("unsupported op %#x", hdr[2])
}

func opError(c net.Conn, status uint64, format string, args ...any) error {
	m := fmt.Sprintf(format, args...)
	_, _ = c.Write(delimited(msg{}.uint(1, status).str(2, "").str(5, m)))
	return errors.New(m)
}

// readBlock answers OP_READ_BLOCK: the chunk-aligned range in packets of
// CRC-32C checksummed chunks, then an empty last packet.
func (dn *datanode) readBlock(c net.Conn, op, block fields, fault Fault) error {
	if fault == Reset {
		return reset(c)
	}
	id := block.uint(2)
	if !dn.srv.ns.blockReadable(id) {
		return opError(c, statusError, "Replica not found for BP-ferry-test:blk_%d", id)
	}
	f, err := os.Open(dn.srv.ns.blockPath(id))
	if err != nil {
		return opError(c, statusError, "Replica not found for blk_%d: %v", id, err)
	}
	defer func() { _ = f.Close() }()
	fi, err := f.Stat()
	if err != nil {
		return opError(c, statusError, "%v", err)
	}
	off, length := int64(op.uint(2)), int64(op.uint(3))
	if off < 0 || length < 0 || off+length > fi.Size() {
		return opError(c, statusErrorInvalid, "Offset %d and length %d don't match block blk_%d of %d bytes", off, length, id, fi.Size())
	}
	start := off - off%bytesPerChecksum
	end := min(fi.Size(), (off+length+bytesPerChecksum-1)/bytesPerChecksum*bytesPerChecksum)
	info := msg{}.sub(1, msg{}.uint(1, checksumCRC32C).uint(2, bytesPerChecksum)).uint(2, uint64(start))
	w := bufio.NewWriterSize(c, readPacketSize+4096)
	if _, err := w.Write(delimited(msg{}.uint(1, statusSuccess).sub(4, info))); err != nil {
		return err
	}
	buf := make([]byte, readPacketSize)
	seq := int64(0)
	half := start + (end-start)/2
	for pos := start; pos < end; {
		n := int(min(int64(readPacketSize), end-pos))
		if _, err := f.ReadAt(buf[:n], pos); err != nil {
			return err
		}
		sums := checksums(buf[:n])
		if fault == Checksum && pos+int64(n) > half {
			sums[len(sums)-1] ^= 0xff
			fault = Pass
		}
		p := packet(pos, seq, false, sums, buf[:n])
		if fault == ResetMid && pos+int64(n) > half {
			// Half of this packet, then the connection drops.
			_, _ = w.Write(p[:len(p)/2])
			_ = w.Flush()
			return reset(c)
		}
		if _, err := w.Write(p); err != nil {
			return err
		}
		pos += int64(n)
		seq++
	}
	if _, err := w.Write(packet(end, seq, true, nil, nil)); err != nil {
		return err
	}
	if err := w.Flush(); err != nil {
		return err
	}
	// The client may answer with a read status; wait for it to hang up.
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.CloseWrite()
	}
	_ = c.SetReadDeadline(time.Now().Add(time.Minute))
	_, _ = io.Copy(io.Discard, c)
	return nil
}

func checksums(data []byte) []byte {
	n := (len(data) + bytesPerChecksum - 1) / bytesPerChecksum
	out := make([]byte, 0, 4*n)
	for i := 0; i < len(data); i += bytesPerChecksum {
		out = binary.BigEndian.AppendUint32(out, crc32.Checksum(data[i:min(i+bytesPerChecksum, len(data))], castagnoli))
	}
	return out
}

// packet is one data packet: payload length, header length, the
// PacketHeaderProto, the checksums, the data.
func packet(off, seq int64, last bool, sums, data []byte) []byte {
	h := msg{}.fixed64(1, uint64(off)).fixed64(2, uint64(seq)).boolean(3, last).fixed32(4, uint32(len(data)))
	out := make([]byte, 0, 6+len(h)+len(sums)+len(data))
	out = binary.BigEndian.AppendUint32(out, uint32(4+len(sums)+len(data)))
	out = binary.BigEndian.AppendUint16(out, uint16(len(h)))
	return append(append(append(out, h...), sums...), data...)
}

func ack(c net.Conn, seq int64, status uint64, replicas int) error {
	m := msg{}.sint(1, seq)
	for i := 0; i < replicas; i++ {
		m = m.uint(2, status)
	}
	_, err := c.Write(delimited(m.uint(3, 0)))
	return err
}

// writeBlock answers OP_WRITE_BLOCK: it takes packets, checks their
// offsets and CRC-32C checksums, acknowledges each one for the whole
// pipeline, and finalizes the replica on the last packet before its ack.
func (dn *datanode) writeBlock(c net.Conn, r *bufio.Reader, op, block fields, fault Fault) error {
	if fault == Reset {
		return reset(c)
	}
	id := block.uint(2)
	if !dn.srv.ns.blockWritable(id) {
		return opError(c, statusErrorInvalid, "Block blk_%d is not open for writing", id)
	}
	sum := op.sub(9)
	if sum.uint(1) != checksumCRC32C || sum.uint(2) == 0 {
		return opError(c, statusErrorInvalid, "unsupported checksum %d/%d", sum.uint(1), sum.uint(2))
	}
	chunk := int(sum.uint(2))
	replicas := 1 + len(op[2])
	rbw := dn.srv.ns.blockPath(id) + ".rbw"
	f, err := os.OpenFile(rbw, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		return opError(c, statusError, "%v", err)
	}
	defer func() {
		_ = f.Close()
		_ = os.Remove(rbw)
	}()
	if _, err := c.Write(delimited(msg{}.uint(1, statusSuccess).str(2, ""))); err != nil {
		return err
	}
	var written int64
	for packets := 0; ; packets++ {
		var pre [6]byte
		if _, err := io.ReadFull(r, pre[:]); err != nil {
			return err
		}
		plen, hlen := binary.BigEndian.Uint32(pre[:4]), binary.BigEndian.Uint16(pre[4:])
		if plen < 4 || plen > maxPacket {
			return fmt.Errorf("packet of %d bytes", plen)
		}
		hb := make([]byte, hlen)
		if _, err := io.ReadFull(r, hb); err != nil {
			return err
		}
		h, err := decode(hb)
		if err != nil {
			return err
		}
		body := make([]byte, plen-4)
		if _, err := io.ReadFull(r, body); err != nil {
			return err
		}
		seq, off, last, dlen := int64(h.uint(2)), int64(h.uint(1)), h.boolean(3), int(uint32(h.uint(4)))
		nsums := (dlen + chunk - 1) / chunk * 4
		if nsums+dlen != len(body) {
			return fmt.Errorf("packet %d: %d bytes for %d of data and %d of checksums", seq, len(body), dlen, nsums)
		}
		if seq == heartbeatSeqno {
			if err := ack(c, seq, statusSuccess, replicas); err != nil {
				return err
			}
			continue
		}
		if fault == ResetMid && (packets > 0 || last) {
			return reset(c)
		}
		sums, data := body[:nsums], body[nsums:]
		bad := fault == Checksum
		for i := 0; i < dlen; i += chunk {
			if crc32.Checksum(data[i:min(i+chunk, dlen)], castagnoli) != binary.BigEndian.Uint32(sums[i/chunk*4:]) {
				bad = true
			}
		}
		if bad {
			_ = ack(c, seq, statusErrorChecksum, replicas)
			return fmt.Errorf("packet %d of blk_%d: checksum error", seq, id)
		}
		if off != written {
			_ = ack(c, seq, statusError, replicas)
			return fmt.Errorf("packet %d of blk_%d at offset %d, expected %d", seq, id, off, written)
		}
		if _, err := f.Write(data); err != nil {
			_ = ack(c, seq, statusError, replicas)
			return err
		}
		written += int64(dlen)
		if last {
			if err := f.Close(); err != nil {
				return err
			}
			if err := os.Rename(rbw, dn.srv.ns.blockPath(id)); err != nil {
				return err
			}
			if !dn.srv.ns.blockReceived(id, written) {
				_ = os.Remove(dn.srv.ns.blockPath(id)) // the file went away meanwhile
			}
		}
		if err := ack(c, seq, statusSuccess, replicas); err != nil {
			return err
		}
		if last {
			return nil
		}
	}
}
