package rmw

/*
#include <stdlib.h>
#include <remotemedia_webrtc.h>
*/
import "C"

import (
	"context"
	"encoding/json"
	"runtime"
	"sync"
	"sync/atomic"
	"unsafe"
)

// TURNServer is one TURN server of Config.TURNServers.
type TURNServer struct {
	URL        string `json:"url"`
	Username   string `json:"username"`
	Credential string `json:"credential"`
}

// Config is the transport configuration, marshalled to the library's JSON configuration
// (docs/ARCHITECTURE.md, "Configuration"). Zero values are left out, so the library's
// defaults apply; the booleans whose default is true are pointers (use rmw.Bool(false)).
type Config struct {
	SignalingURL             string         `json:"signaling_url,omitempty"`   // default ws://127.0.0.1:8080
	PeerID                   string         `json:"peer_id,omitempty"`         // default: random
	SignalingToken           string         `json:"signaling_token,omitempty"` // for servers that require authentication
	STUNServers              []string       `json:"stun_servers,omitempty"`
	TURNServers              []TURNServer   `json:"turn_servers,omitempty"`
	MaxPeers                 int            `json:"max_peers,omitempty"` // default 10
	AudioCodec               string         `json:"audio_codec,omitempty"`
	VideoCodec               string         `json:"video_codec,omitempty"`         // preferred video codec: "vp8" (default) or "vp9"
	EnableDataChannel        *bool          `json:"enable_data_channel,omitempty"` // default true
	JitterBufferSizeMs       int            `json:"jitter_buffer_size_ms,omitempty"`
	EnableAudio              *bool          `json:"enable_audio,omitempty"`             // default true: one two-way Opus track per peer
	AudioOutputSampleRate    int            `json:"audio_output_sample_rate,omitempty"` // received audio: default 48000 Hz
	AudioOutputChannels      int            `json:"audio_output_channels,omitempty"`    // default 2 (interleaved)
	AudioOutputFormat        string         `json:"audio_output_format,omitempty"`      // "f32" (default) or "s16"
	AudioQueueCapacity       int            `json:"audio_queue_capacity,omitempty"`     // frames waiting for PollAudio (default 256)
	EnableVideo              *bool          `json:"enable_video,omitempty"`             // default true: one two-way video track (VP8/VP9) per peer
	VideoOutputFormat        string         `json:"video_output_format,omitempty"`      // received video: "i420" (default) or "rgba"
	VideoQueueCapacity       int            `json:"video_queue_capacity,omitempty"`     // decoded frames waiting for PollVideo (default 8; oldest dropped)
	VideoMaxDelayMs          int            `json:"video_max_delay_ms,omitempty"`       // longest a missing packet is waited for (NACK) before its frame is dropped (default 200)
	SimulateLossPercent      int            `json:"simulate_loss_percent,omitempty"`    // drop this share (0..50 %) of incoming RTP packets, for tests (default 0)
	EnableRTCP               *bool          `json:"enable_rtcp,omitempty"`
	RTCPIntervalMs           int            `json:"rtcp_interval_ms,omitempty"`
	ICEPolicy                string         `json:"ice_policy,omitempty"`  // "all" (default), "loopback", "relay"
	AutoAnswer               *bool          `json:"auto_answer,omitempty"` // default true
	ICEDisconnectedTimeoutMs int            `json:"ice_disconnected_timeout_ms,omitempty"`
	ICEFailedTimeoutMs       int            `json:"ice_failed_timeout_ms,omitempty"`
	ICEKeepaliveIntervalMs   int            `json:"ice_keepalive_interval_ms,omitempty"`
	ReconnectInitialMs       int            `json:"reconnect_initial_ms,omitempty"`
	ReconnectMaxMs           int            `json:"reconnect_max_ms,omitempty"`
	EventQueueCapacity       int            `json:"event_queue_capacity,omitempty"`
	WorkerThreads            int            `json:"worker_threads,omitempty"`
	Capabilities             map[string]any `json:"capabilities,omitempty"`
}

// Bool returns a pointer to b, for the optional booleans of Config.
func Bool(b bool) *bool { return &b }

// Transport is one identity on a signaling server and its peer connections. All methods are
// safe for concurrent use. Close it when done (a finalizer closes it otherwise, unless
// Events was called: its goroutine keeps the Transport reachable until Close).
type Transport struct {
	h      C.rmw_transport_t
	closed atomic.Bool
	once   sync.Once
	done   chan struct{} // closed by Close

	eventsOnce sync.Once
	events     chan Event
	eventsDone chan struct{} // closed when the Events goroutine has stopped
}

// NewTransport creates a transport and starts connecting to the signaling server; an
// EventSignalingConnected event follows.
func NewTransport(cfg Config) (*Transport, error) {
	js, err := json.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	cjs, err := cString(string(js))
	if err != nil {
		return nil, err
	}
	defer C.free(unsafe.Pointer(cjs))
	var h C.rmw_transport_t
	if err := call(func() C.rmw_status_t { return C.rmw_transport_new(cjs, &h) }); err != nil {
		return nil, err
	}
	t := &Transport{h: h, done: make(chan struct{})}
	runtime.SetFinalizer(t, (*Transport).Close)
	return t, nil
}

// Handle returns the library handle (rmw_transport_t) of the transport.
func (t *Transport) Handle() uint64 { return uint64(t.h) }

// Close closes every peer connection and data channel, leaves the signaling server and
// joins the transport's threads. A blocked Next returns an error wrapping ErrClosed (or
// ErrInvalidHandle), the Events channel is closed. Calling Close again returns nil.
func (t *Transport) Close() error {
	var err error
	t.once.Do(func() {
		t.closed.Store(true)
		close(t.done)
		runtime.SetFinalizer(t, nil)
		h := t.h
		err = call(func() C.rmw_status_t { return C.rmw_transport_free(h) })
		// Settle Events: either its goroutine was started (wait for it to stop) or later
		// calls get a closed channel.
		t.eventsOnce.Do(func() {
			t.events = make(chan Event)
			close(t.events)
		})
		if t.eventsDone != nil {
			<-t.eventsDone
		}
	})
	return err
}

// check returns an error if the transport was closed.
func (t *Transport) check() error {
	if t.closed.Load() {
		return errClosed("transport")
	}
	return nil
}

// do runs one C call on the transport's handle, keeping t alive during it.
func (t *Transport) do(f func(h C.rmw_transport_t) C.rmw_status_t) error {
	if err := t.check(); err != nil {
		return err
	}
	err := call(func() C.rmw_status_t { return f(t.h) })
	runtime.KeepAlive(t)
	return err
}

// withString runs f with s as a C string.
func withString(s string, f func(cs *C.char) error) error {
	cs, err := cString(s)
	if err != nil {
		return err
	}
	defer C.free(unsafe.Pointer(cs))
	return f(cs)
}

func withStrings2(a, b string, f func(ca, cb *C.char) error) error {
	return withString(a, func(ca *C.char) error {
		return withString(b, func(cb *C.char) error { return f(ca, cb) })
	})
}

// PeerID returns this transport's peer id (the one announced to the signaling server).
func (t *Transport) PeerID() (string, error) {
	if err := t.check(); err != nil {
		return "", err
	}
	s, err := getString(func(buf *C.char, n *C.size_t) C.rmw_status_t {
		return C.rmw_transport_peer_id(t.h, buf, n)
	})
	runtime.KeepAlive(t)
	return s, err
}

// ConnectPeer offers a connection to peerID (as announced by EventPeerDiscovered) and
// returns once the offer is sent; progress comes as events. Errors: ErrNotFound (the
// signaling server does not know the peer), ErrMaxPeers, ErrNotConnected (signaling not up
// yet). ctx is checked before the call (the call itself does not wait for the connection).
func (t *Transport) ConnectPeer(ctx context.Context, peerID string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return withString(peerID, func(cs *C.char) error {
		return t.do(func(h C.rmw_transport_t) C.rmw_status_t { return C.rmw_transport_connect_peer(h, cs) })
	})
}

// AcceptPeer answers the offer announced by EventPeerOffer (only when AutoAnswer is false).
func (t *Transport) AcceptPeer(peerID string) error {
	return withString(peerID, func(cs *C.char) error {
		return t.do(func(h C.rmw_transport_t) C.rmw_status_t { return C.rmw_transport_accept_peer(h, cs) })
	})
}

// DisconnectPeer closes the connection to peerID (or refuses its pending offer).
func (t *Transport) DisconnectPeer(peerID string) error {
	return withString(peerID, func(cs *C.char) error {
		return t.do(func(h C.rmw_transport_t) C.rmw_status_t { return C.rmw_transport_disconnect_peer(h, cs) })
	})
}

// PeerState returns the state of the connection to peerID (ErrNotFound if there is none).
func (t *Transport) PeerState(peerID string) (PeerState, error) {
	var st C.rmw_peer_state_t
	err := withString(peerID, func(cs *C.char) error {
		return t.do(func(h C.rmw_transport_t) C.rmw_status_t { return C.rmw_transport_peer_state(h, cs, &st) })
	})
	return PeerState(st), err
}

// PeerCount returns the number of peer connections (only connected ones if connectedOnly).
func (t *Transport) PeerCount(connectedOnly bool) (int, error) {
	var n C.size_t
	err := t.do(func(h C.rmw_transport_t) C.rmw_status_t {
		return C.rmw_transport_peer_count(h, C.bool(connectedOnly), &n)
	})
	return int(n), err
}

// PeerInfo describes one peer connection (see Peers).
type PeerInfo struct {
	PeerID    string    `json:"peer_id"`
	State     PeerState `json:"state"`
	Initiator bool      `json:"initiator"`
	Channels  []uint64  `json:"channels"`
}

// Peers lists every peer connection.
func (t *Transport) Peers() ([]PeerInfo, error) { return t.listPeers(false) }

// ConnectedPeers lists the connected peers.
func (t *Transport) ConnectedPeers() ([]PeerInfo, error) { return t.listPeers(true) }

func (t *Transport) listPeers(connectedOnly bool) ([]PeerInfo, error) {
	if err := t.check(); err != nil {
		return nil, err
	}
	s, err := getString(func(buf *C.char, n *C.size_t) C.rmw_status_t {
		return C.rmw_transport_list_peers(t.h, C.bool(connectedOnly), buf, n)
	})
	runtime.KeepAlive(t)
	if err != nil {
		return nil, err
	}
	var peers []PeerInfo
	if err := json.Unmarshal([]byte(s), &peers); err != nil {
		return nil, err
	}
	return peers, nil
}

// SendData sends data on the default "data" channel of peerID, or of every connected peer
// when peerID is "". binary false sends text (data must be UTF-8). It returns the number of
// peers the message went to. The data is copied before SendData returns.
func (t *Transport) SendData(peerID string, data []byte, binary bool) (int, error) {
	var sent C.size_t
	p, n := bytesArg(data)
	send := func(cs *C.char) error {
		err := t.do(func(h C.rmw_transport_t) C.rmw_status_t {
			return C.rmw_transport_send_data(h, cs, p, n, C.bool(binary), &sent)
		})
		runtime.KeepAlive(data)
		return err
	}
	var err error
	if peerID == "" {
		err = send(nil)
	} else {
		err = withString(peerID, send)
	}
	return int(sent), err
}

// SendText sends text on the default channel of peerID ("" = every connected peer).
func (t *Transport) SendText(peerID, text string) (int, error) {
	return t.SendData(peerID, []byte(text), false)
}

// Stats returns the transport's counters (peers, channels, events pending and dropped) as
// the library's JSON object.
func (t *Transport) Stats() (map[string]any, error) {
	if err := t.check(); err != nil {
		return nil, err
	}
	s, err := getString(func(buf *C.char, n *C.size_t) C.rmw_status_t {
		return C.rmw_transport_stats_json(t.h, buf, n)
	})
	runtime.KeepAlive(t)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		return nil, err
	}
	return m, nil
}

// ---- sessions ---------------------------------------------------------------------------

// SessionInfo describes one session.
type SessionInfo struct {
	SessionID   string   `json:"session_id"`
	Peers       []string `json:"peers"`
	CreatedAtMs int64    `json:"created_at_ms"`
}

// CreateSession creates an empty session (ErrAlreadyExists if the id is taken).
func (t *Transport) CreateSession(sessionID string) error {
	return withString(sessionID, func(cs *C.char) error {
		return t.do(func(h C.rmw_transport_t) C.rmw_status_t { return C.rmw_session_create(h, cs) })
	})
}

// RemoveSession removes a session (its peers stay connected).
func (t *Transport) RemoveSession(sessionID string) error {
	return withString(sessionID, func(cs *C.char) error {
		return t.do(func(h C.rmw_transport_t) C.rmw_status_t { return C.rmw_session_remove(h, cs) })
	})
}

// AddSessionPeer adds a peer of this transport (connected or connecting) to a session.
func (t *Transport) AddSessionPeer(sessionID, peerID string) error {
	return withStrings2(sessionID, peerID, func(cs, cp *C.char) error {
		return t.do(func(h C.rmw_transport_t) C.rmw_status_t { return C.rmw_session_add_peer(h, cs, cp) })
	})
}

// RemoveSessionPeer removes a peer from a session.
func (t *Transport) RemoveSessionPeer(sessionID, peerID string) error {
	return withStrings2(sessionID, peerID, func(cs, cp *C.char) error {
		return t.do(func(h C.rmw_transport_t) C.rmw_status_t { return C.rmw_session_remove_peer(h, cs, cp) })
	})
}

// Session returns one session.
func (t *Transport) Session(sessionID string) (SessionInfo, error) {
	var info SessionInfo
	var s string
	err := withString(sessionID, func(cs *C.char) error {
		if err := t.check(); err != nil {
			return err
		}
		var err error
		s, err = getString(func(buf *C.char, n *C.size_t) C.rmw_status_t {
			return C.rmw_session_get(t.h, cs, buf, n)
		})
		runtime.KeepAlive(t)
		return err
	})
	if err != nil {
		return info, err
	}
	err = json.Unmarshal([]byte(s), &info)
	return info, err
}

// Sessions lists every session.
func (t *Transport) Sessions() ([]SessionInfo, error) {
	if err := t.check(); err != nil {
		return nil, err
	}
	s, err := getString(func(buf *C.char, n *C.size_t) C.rmw_status_t {
		return C.rmw_session_list(t.h, buf, n)
	})
	runtime.KeepAlive(t)
	if err != nil {
		return nil, err
	}
	var list []SessionInfo
	err = json.Unmarshal([]byte(s), &list)
	return list, err
}

// SendToSession sends data on the default channel of every connected peer of the session
// and returns how many peers it went to.
func (t *Transport) SendToSession(sessionID string, data []byte, binary bool) (int, error) {
	var sent C.size_t
	p, n := bytesArg(data)
	err := withString(sessionID, func(cs *C.char) error {
		return t.do(func(h C.rmw_transport_t) C.rmw_status_t {
			return C.rmw_session_send_data(h, cs, p, n, C.bool(binary), &sent)
		})
	})
	runtime.KeepAlive(data)
	return int(sent), err
}
