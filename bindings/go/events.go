package rmw

/*
#include <stdlib.h>
#include <remotemedia_webrtc.h>
*/
import "C"

import (
	"context"
	"errors"
	"fmt"
	"time"
	"unsafe"
)

// EventKind is the kind of an Event (rmw_event_kind_t).
type EventKind int

// Event kinds.
const (
	EventNone                         EventKind = C.RMW_EVENT_NONE
	EventSignalingConnected           EventKind = C.RMW_EVENT_SIGNALING_CONNECTED
	EventSignalingDisconnected        EventKind = C.RMW_EVENT_SIGNALING_DISCONNECTED
	EventPeerDiscovered               EventKind = C.RMW_EVENT_PEER_DISCOVERED
	EventPeerLeft                     EventKind = C.RMW_EVENT_PEER_LEFT
	EventPeerOffer                    EventKind = C.RMW_EVENT_PEER_OFFER
	EventPeerStateChanged             EventKind = C.RMW_EVENT_PEER_STATE_CHANGED
	EventDataChannelOpen              EventKind = C.RMW_EVENT_DATA_CHANNEL_OPEN
	EventDataChannelClose             EventKind = C.RMW_EVENT_DATA_CHANNEL_CLOSE
	EventDataChannelMessage           EventKind = C.RMW_EVENT_DATA_CHANNEL_MESSAGE
	EventDataChannelBufferedAmountLow EventKind = C.RMW_EVENT_DATA_CHANNEL_BUFFERED_AMOUNT_LOW
	EventError                        EventKind = C.RMW_EVENT_ERROR
	EventTrackAdded                   EventKind = C.RMW_EVENT_TRACK_ADDED   // first packet of a remote track
	EventTrackRemoved                 EventKind = C.RMW_EVENT_TRACK_REMOVED // a remote track ended
)

var eventKindNames = map[EventKind]string{
	EventNone: "None", EventSignalingConnected: "SignalingConnected",
	EventSignalingDisconnected: "SignalingDisconnected", EventPeerDiscovered: "PeerDiscovered",
	EventPeerLeft: "PeerLeft", EventPeerOffer: "PeerOffer", EventPeerStateChanged: "PeerStateChanged",
	EventDataChannelOpen: "DataChannelOpen", EventDataChannelClose: "DataChannelClose",
	EventDataChannelMessage: "DataChannelMessage", EventDataChannelBufferedAmountLow: "DataChannelBufferedAmountLow",
	EventError: "Error", EventTrackAdded: "TrackAdded", EventTrackRemoved: "TrackRemoved",
}

func (k EventKind) String() string {
	if s, ok := eventKindNames[k]; ok {
		return s
	}
	return fmt.Sprintf("EventKind(%d)", int(k))
}

// PeerState is the state of a peer connection (rmw_peer_state_t).
type PeerState int

// Peer connection states.
const (
	PeerNew          PeerState = C.RMW_PEER_NEW
	PeerConnecting   PeerState = C.RMW_PEER_CONNECTING
	PeerConnected    PeerState = C.RMW_PEER_CONNECTED
	PeerDisconnected PeerState = C.RMW_PEER_DISCONNECTED
	PeerFailed       PeerState = C.RMW_PEER_FAILED
	PeerClosed       PeerState = C.RMW_PEER_CLOSED
)

var peerStateNames = []string{"new", "connecting", "connected", "disconnected", "failed", "closed"}

// String returns the library's name of the state ("connected", ...).
func (s PeerState) String() string {
	if s >= 0 && int(s) < len(peerStateNames) {
		return peerStateNames[s]
	}
	return fmt.Sprintf("PeerState(%d)", int(s))
}

// MarshalText implements encoding.TextMarshaler.
func (s PeerState) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText parses the library's name of a state (as in Transport.Peers).
func (s *PeerState) UnmarshalText(b []byte) error {
	for i, n := range peerStateNames {
		if n == string(b) {
			*s = PeerState(i)
			return nil
		}
	}
	return fmt.Errorf("rmw: unknown peer state %q", b)
}

// MediaKind is the kind of a track (rmw_media_kind_t).
type MediaKind int

// Media kinds.
const (
	MediaNone  MediaKind = C.RMW_MEDIA_NONE
	MediaAudio MediaKind = C.RMW_MEDIA_AUDIO
	MediaVideo MediaKind = C.RMW_MEDIA_VIDEO
)

func (k MediaKind) String() string {
	switch k {
	case MediaNone:
		return "none"
	case MediaAudio:
		return "audio"
	case MediaVideo:
		return "video"
	}
	return fmt.Sprintf("MediaKind(%d)", int(k))
}

// Event is one event of a transport, copied into Go memory. Fields that do not apply to the
// kind are zero.
type Event struct {
	Kind      EventKind
	PeerID    string
	PeerState PeerState    // EventPeerStateChanged
	Channel   *DataChannel // EventDataChannel*: the channel (also channels opened by the remote)
	Label     string       // channel label
	Data      []byte       // EventDataChannelMessage payload
	Binary    bool         // false: Data is UTF-8 text
	Message   string       // errors, disconnect reasons

	// EventTrackAdded / EventTrackRemoved: the remote track (its decoded audio or video comes
	// through PollAudio / PollVideo with the same TrackID).
	TrackID   string
	MediaKind MediaKind
	Codec     string // lower case: "opus", "vp8" or "vp9"
	ClockRate uint32 // RTP clock rate (48000 for Opus, 90000 for video)
	Channels  uint32 // audio: the negotiated channels (Opus: 2); video: 0
}

// Text returns Data as a string.
func (e Event) Text() string { return string(e.Data) }

func (e Event) String() string {
	s := e.Kind.String()
	if e.PeerID != "" {
		s += " peer=" + e.PeerID
	}
	switch e.Kind {
	case EventPeerStateChanged:
		s += " state=" + e.PeerState.String()
	case EventTrackAdded, EventTrackRemoved:
		s += fmt.Sprintf(" track=%s kind=%s", e.TrackID, e.MediaKind)
		if e.Codec != "" {
			s += fmt.Sprintf(" codec=%s/%d/%d", e.Codec, e.ClockRate, e.Channels)
		}
	case EventDataChannelMessage:
		if e.Binary {
			s += fmt.Sprintf(" binary=%x", e.Data)
		} else {
			s += fmt.Sprintf(" text=%q", e.Data)
		}
	}
	if e.Label != "" {
		s += " label=" + e.Label
	}
	if e.Message != "" {
		s += " message=" + e.Message
	}
	return s
}

// pollSlice is how long one rmw_transport_poll_event call waits at most, so that context
// cancellation and Close are noticed promptly.
const pollSlice = 50 * time.Millisecond

// Next waits for the next event until ctx is done. After Close (also from another goroutine
// while Next waits) it returns an error wrapping ErrClosed (or ErrInvalidHandle); when ctx is
// done, ctx.Err(). Do not mix Next with Events on the same transport: they share the queue.
func (t *Transport) Next(ctx context.Context) (Event, error) {
	for {
		if err := t.check(); err != nil {
			return Event{}, err
		}
		if err := ctx.Err(); err != nil {
			return Event{}, err
		}
		timeout := pollSlice
		if dl, ok := ctx.Deadline(); ok {
			if d := time.Until(dl); d < timeout {
				timeout = d
			}
		}
		if timeout < 0 {
			timeout = 0
		}
		ev, err := t.poll(timeout)
		if err == nil {
			return ev, nil
		}
		if errors.Is(err, ErrTimeout) {
			continue
		}
		if errors.Is(err, ErrInvalidHandle) && t.closed.Load() {
			return Event{}, fmt.Errorf("%w (%v)", ErrClosed, err)
		}
		return Event{}, err
	}
}

// poll polls one event and copies it into Go memory.
func (t *Transport) poll(timeout time.Duration) (Event, error) {
	// The C event lives in C memory: the library writes its own pointers into it.
	cev := (*C.rmw_event_t)(C.calloc(1, C.size_t(unsafe.Sizeof(C.rmw_event_t{}))))
	defer C.free(unsafe.Pointer(cev))
	ms := C.int32_t(timeout / time.Millisecond)
	err := t.do(func(h C.rmw_transport_t) C.rmw_status_t { return C.rmw_transport_poll_event(h, cev, ms) })
	if err != nil {
		return Event{}, err
	}
	ev := Event{
		Kind:      EventKind(cev.kind),
		PeerState: PeerState(cev.peer_state),
		Binary:    bool(cev.binary),
		MediaKind: MediaKind(cev.media_kind),
		ClockRate: uint32(cev.clock_rate),
		Channels:  uint32(cev.channels),
	}
	if cev.peer_id != nil {
		ev.PeerID = C.GoString(cev.peer_id)
	}
	if cev.label != nil {
		ev.Label = C.GoString(cev.label)
	}
	if cev.message != nil {
		ev.Message = C.GoString(cev.message)
	}
	if cev.track_id != nil {
		ev.TrackID = C.GoString(cev.track_id)
	}
	if cev.codec != nil {
		ev.Codec = C.GoString(cev.codec)
	}
	if cev.data != nil {
		ev.Data = C.GoBytes(unsafe.Pointer(cev.data), C.int(cev.len))
	} else if ev.Kind == EventDataChannelMessage {
		ev.Data = []byte{}
	}
	if cev.channel != 0 {
		ev.Channel = &DataChannel{t: t, h: cev.channel, label: ev.Label, peerID: ev.PeerID}
	}
	C.rmw_event_release(cev)
	return ev, nil
}

// Events returns a channel that receives every event, fed by one goroutine started on the
// first call (later calls return the same channel). The channel is closed when the
// transport is closed (or polling fails). Do not mix with Next. Events are not dropped by
// the binding: while the application does not read, they wait in the library's bounded queue.
func (t *Transport) Events() <-chan Event {
	t.eventsOnce.Do(func() {
		if t.closed.Load() {
			t.events = make(chan Event)
			close(t.events)
			return
		}
		t.events = make(chan Event, 64)
		t.eventsDone = make(chan struct{})
		go t.runEvents()
	})
	return t.events
}

func (t *Transport) runEvents() {
	defer close(t.eventsDone)
	defer close(t.events)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-t.done:
			cancel()
		case <-ctx.Done():
		}
	}()
	for {
		ev, err := t.Next(ctx)
		if err != nil {
			return
		}
		select {
		case t.events <- ev:
		case <-t.done:
			return
		}
	}
}
