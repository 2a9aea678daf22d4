package rmw

/*
#include <stdlib.h>
#include <remotemedia_webrtc.h>
*/
import "C"

import (
	"runtime"
	"unsafe"
)

// DataChannelOptions sets the reliability of a data channel, as in RTCDataChannelInit. At
// most one of MaxRetransmits and MaxPacketLifetimeMs may be >= 0; both -1 means reliable.
// Pass nil to CreateDataChannel for the defaults (ordered, reliable).
type DataChannelOptions struct {
	Ordered             bool
	MaxRetransmits      int // -1: unlimited (reliable); 0..65535
	MaxPacketLifetimeMs int // -1: unlimited; 0..65535
}

// DefaultDataChannelOptions returns ordered, reliable options.
func DefaultDataChannelOptions() DataChannelOptions {
	return DataChannelOptions{Ordered: true, MaxRetransmits: -1, MaxPacketLifetimeMs: -1}
}

// DataChannel is a data channel of a transport. Its handle is valid until its
// EventDataChannelClose has been delivered or its transport is closed; after that its
// methods return ErrInvalidHandle (or ErrClosed).
type DataChannel struct {
	t      *Transport
	h      C.rmw_data_channel_t
	label  string
	peerID string
}

// CreateDataChannel creates a data channel labelled label to peerID. It is usable after the
// EventDataChannelOpen for it (Event.Channel.ID() == ch.ID()).
func (t *Transport) CreateDataChannel(peerID, label string, opts *DataChannelOptions) (*DataChannel, error) {
	var copts *C.rmw_data_channel_options_t
	if opts != nil {
		copts = (*C.rmw_data_channel_options_t)(C.malloc(C.size_t(unsafe.Sizeof(C.rmw_data_channel_options_t{}))))
		defer C.free(unsafe.Pointer(copts))
		copts.ordered = C.bool(opts.Ordered)
		copts.max_retransmits = C.int32_t(opts.MaxRetransmits)
		copts.max_packet_lifetime_ms = C.int32_t(opts.MaxPacketLifetimeMs)
	}
	var h C.rmw_data_channel_t
	err := withStrings2(peerID, label, func(cp, cl *C.char) error {
		return t.do(func(th C.rmw_transport_t) C.rmw_status_t {
			return C.rmw_data_channel_create(th, cp, cl, copts, &h)
		})
	})
	if err != nil {
		return nil, err
	}
	return &DataChannel{t: t, h: h, label: label, peerID: peerID}, nil
}

// ID returns the channel's library handle (rmw_data_channel_t).
func (d *DataChannel) ID() uint64 { return uint64(d.h) }

// PeerID returns the peer the channel goes to.
func (d *DataChannel) PeerID() string { return d.peerID }

func (d *DataChannel) do(f func(h C.rmw_data_channel_t) C.rmw_status_t) error {
	if err := d.t.check(); err != nil {
		return err
	}
	err := call(func() C.rmw_status_t { return f(d.h) })
	runtime.KeepAlive(d.t)
	return err
}

// Send sends one message (at most MaxMessageSize bytes; copied before Send returns).
// binary false sends text. ErrNotConnected before the channel is open.
func (d *DataChannel) Send(data []byte, binary bool) error {
	p, n := bytesArg(data)
	err := d.do(func(h C.rmw_data_channel_t) C.rmw_status_t { return C.rmw_data_channel_send(h, p, n, C.bool(binary)) })
	runtime.KeepAlive(data)
	return err
}

// SendText sends a text message.
func (d *DataChannel) SendText(s string) error { return d.Send([]byte(s), false) }

// BufferedAmount returns the bytes queued for sending and not yet acknowledged.
func (d *DataChannel) BufferedAmount() (uint64, error) {
	var n C.uint64_t
	err := d.do(func(h C.rmw_data_channel_t) C.rmw_status_t { return C.rmw_data_channel_buffered_amount(h, &n) })
	return uint64(n), err
}

// SetBufferedAmountLowThreshold makes EventDataChannelBufferedAmountLow fire when the
// buffered amount falls to threshold bytes or below.
func (d *DataChannel) SetBufferedAmountLowThreshold(threshold uint64) error {
	return d.do(func(h C.rmw_data_channel_t) C.rmw_status_t {
		return C.rmw_data_channel_set_buffered_amount_low_threshold(h, C.uint64_t(threshold))
	})
}

// Label returns the channel's label, asking the library if it is not known yet.
func (d *DataChannel) Label() (string, error) {
	if d.label != "" {
		return d.label, nil
	}
	if err := d.t.check(); err != nil {
		return "", err
	}
	s, err := getString(func(buf *C.char, n *C.size_t) C.rmw_status_t { return C.rmw_data_channel_label(d.h, buf, n) })
	runtime.KeepAlive(d.t)
	return s, err
}

// Close closes the channel on both sides; EventDataChannelClose follows.
func (d *DataChannel) Close() error {
	return d.do(func(h C.rmw_data_channel_t) C.rmw_status_t { return C.rmw_data_channel_close(h) })
}
