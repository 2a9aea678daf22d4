package rmw

/*
#include <stdlib.h>
#include <remotemedia_webrtc.h>
*/
import "C"

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"
)

// ---- targets and configuration ------------------------------------------------------------

// TargetKind says whom an outgoing track sends to (RMW_TARGET_*).
type TargetKind int32

// Track target kinds.
const (
	TargetNone    TargetKind = C.RMW_TARGET_NONE    // nobody (the track encodes but sends nothing)
	TargetPeer    TargetKind = C.RMW_TARGET_PEER    // the peer named by TrackTarget.ID
	TargetSession TargetKind = C.RMW_TARGET_SESSION // every peer of session TrackTarget.ID, as it changes
	TargetAll     TargetKind = C.RMW_TARGET_ALL     // every peer of the transport, later ones included
)

// TrackTarget is whom an AudioTrack sends to. The zero value sends to nobody.
type TrackTarget struct {
	Kind TargetKind
	ID   string // peer id (TargetPeer) or session id (TargetSession); ignored otherwise
}

// ToPeer targets one peer.
func ToPeer(peerID string) TrackTarget { return TrackTarget{Kind: TargetPeer, ID: peerID} }

// ToSession targets every peer of a session, following its membership.
func ToSession(sessionID string) TrackTarget {
	return TrackTarget{Kind: TargetSession, ID: sessionID}
}

// ToAllPeers targets every peer of the transport, later ones included.
func ToAllPeers() TrackTarget { return TrackTarget{Kind: TargetAll} }

func (t TrackTarget) String() string {
	switch t.Kind {
	case TargetNone:
		return "none"
	case TargetPeer:
		return "peer:" + t.ID
	case TargetSession:
		return "session:" + t.ID
	case TargetAll:
		return "all"
	}
	return fmt.Sprintf("TargetKind(%d):%s", int(t.Kind), t.ID)
}

// withTarget runs f with the C arguments of t: target_id is NULL when t.ID is "".
func withTarget(t TrackTarget, f func(kind C.int32_t, id *C.char) error) error {
	if t.ID == "" {
		return f(C.int32_t(t.Kind), nil)
	}
	return withString(t.ID, func(cs *C.char) error { return f(C.int32_t(t.Kind), cs) })
}

// OpusApplication is the Opus application mode (RMW_OPUS_*).
type OpusApplication int32

// Opus application modes.
const (
	OpusVoIP     OpusApplication = C.RMW_OPUS_VOIP
	OpusAudio    OpusApplication = C.RMW_OPUS_AUDIO
	OpusLowDelay OpusApplication = C.RMW_OPUS_LOW_DELAY
)

// AudioTrackConfig says how an outgoing track encodes (rmw_audio_track_config_t). Start from
// DefaultAudioTrackConfig and change what you need: every field is meaningful, zero included.
type AudioTrackConfig struct {
	SampleRate          int             // Hz of the PCM you send: 8000, 16000, 24000, 32000, 44100, 48000 (default) or 96000
	Channels            int             // 1 (default) or 2; samples are interleaved
	FrameMs             int             // Opus frame: 10, 20 (default), 40 or 60 ms
	Bitrate             int             // bit/s, 6000..510000 (default 32000)
	Complexity          int             // 0 (fastest) ..10 (best); default 9
	FEC                 bool            // in-band forward error correction (default true)
	ExpectedLossPercent int             // loss FEC is planned for, 0..100 (default 10)
	DTX                 bool            // discontinuous transmission: silence is not sent (default false)
	Application         OpusApplication // default OpusVoIP
	MaxQueueMs          int             // PCM queued ahead of the encoder before sends fail with ErrQueueFull (default 200)
}

// DefaultAudioTrackConfig returns the library's defaults (rmw_audio_track_config_default):
// 48 kHz mono, 20 ms frames, 32 kbit/s, complexity 9, FEC for 10 % loss, no DTX, VoIP mode,
// 200 ms of queue.
func DefaultAudioTrackConfig() AudioTrackConfig {
	d := C.rmw_audio_track_config_default()
	return AudioTrackConfig{
		SampleRate:          int(d.sample_rate),
		Channels:            int(d.channels),
		FrameMs:             int(d.frame_ms),
		Bitrate:             int(d.bitrate),
		Complexity:          int(d.complexity),
		FEC:                 bool(d.fec),
		ExpectedLossPercent: int(d.expected_loss_percent),
		DTX:                 bool(d.dtx),
		Application:         OpusApplication(d.application),
		MaxQueueMs:          int(d.max_queue_ms),
	}
}

func (c *AudioTrackConfig) toC() (C.rmw_audio_track_config_t, error) {
	var out C.rmw_audio_track_config_t
	var bad error
	u32 := func(name string, v int) C.uint32_t {
		if (v < 0 || uint64(v) > math.MaxUint32) && bad == nil {
			bad = &Error{Status: StatusInvalidArgument, Message: fmt.Sprintf("%s %d is out of range", name, v)}
		}
		return C.uint32_t(v)
	}
	out.sample_rate = u32("sample_rate", c.SampleRate)
	out.channels = u32("channels", c.Channels)
	out.frame_ms = u32("frame_ms", c.FrameMs)
	out.bitrate = u32("bitrate", c.Bitrate)
	out.complexity = u32("complexity", c.Complexity)
	out.fec = C.bool(c.FEC)
	out.expected_loss_percent = u32("expected_loss_percent", c.ExpectedLossPercent)
	out.dtx = C.bool(c.DTX)
	out.application = C.int32_t(c.Application)
	out.max_queue_ms = u32("max_queue_ms", c.MaxQueueMs)
	return out, bad
}

// ---- outgoing tracks ------------------------------------------------------------------------

// AudioTrack is an outgoing Opus track of a transport, fed with PCM by SendFloat32 or
// SendInt16. Its methods are safe for concurrent use. Close it when done; it is closed with
// its transport, and a finalizer closes it once unreachable (a peer carries one outgoing
// audio track at a time, so a forgotten track would keep its peers busy).
type AudioTrack struct {
	t      *Transport
	h      C.rmw_audio_track_t
	cfg    AudioTrackConfig
	closed atomic.Bool
	once   sync.Once
}

// AddAudioTrack creates an outgoing Opus track sending to target, encoding as cfg says (nil:
// DefaultAudioTrackConfig). Errors: ErrInvalidArgument (a bad setting, or EnableAudio false
// in the transport's Config), ErrNotFound (the target peer or session does not exist).
// A peer carries one outgoing audio track at a time: a second track aimed at it skips it
// (AudioTrackStats.PeersBusy counts it).
func (t *Transport) AddAudioTrack(target TrackTarget, cfg *AudioTrackConfig) (*AudioTrack, error) {
	c := DefaultAudioTrackConfig()
	if cfg != nil {
		c = *cfg
	}
	ccfg, err := c.toC()
	if err != nil {
		return nil, err
	}
	var h C.rmw_audio_track_t
	err = withTarget(target, func(kind C.int32_t, id *C.char) error {
		return t.do(func(th C.rmw_transport_t) C.rmw_status_t {
			return C.rmw_audio_track_new(th, &ccfg, kind, id, &h)
		})
	})
	if err != nil {
		return nil, err
	}
	a := &AudioTrack{t: t, h: h, cfg: c}
	runtime.SetFinalizer(a, (*AudioTrack).Close)
	return a, nil
}

// ID returns the track's library handle (rmw_audio_track_t).
func (a *AudioTrack) ID() uint64 { return uint64(a.h) }

// Config returns the configuration the track was created with.
func (a *AudioTrack) Config() AudioTrackConfig { return a.cfg }

// check returns an ErrClosed error if the track or its transport was closed.
func (a *AudioTrack) check() error {
	if a.closed.Load() {
		return errClosed("audio track")
	}
	return a.t.check()
}

// closedErr turns ErrInvalidHandle into ErrClosed when the track or its transport was closed
// meanwhile (by another goroutine).
func (a *AudioTrack) closedErr(err error) error {
	if err != nil && errors.Is(err, ErrInvalidHandle) {
		if cerr := a.check(); cerr != nil {
			return cerr
		}
	}
	return err
}

func (a *AudioTrack) do(f func(h C.rmw_audio_track_t) C.rmw_status_t) error {
	if err := a.check(); err != nil {
		return err
	}
	err := call(func() C.rmw_status_t { return f(a.h) })
	runtime.KeepAlive(a)
	return a.closedErr(err)
}

// samplesPerChannel checks an interleaved buffer of n samples against the track's channels.
func (a *AudioTrack) samplesPerChannel(n int) (C.size_t, error) {
	ch := a.cfg.Channels
	if n == 0 {
		return 0, &Error{Status: StatusInvalidArgument, Message: "no samples"}
	}
	if ch <= 0 || n%ch != 0 {
		return 0, &Error{Status: StatusInvalidArgument,
			Message: fmt.Sprintf("%d samples is not a whole number of frames of %d channels", n, ch)}
	}
	return C.size_t(n / ch), nil
}

// SendFloat32 queues interleaved float PCM in [-1, 1] at the track's rate and channels
// (len(pcm) must be a multiple of Config().Channels) and returns without waiting for the
// encoder; the samples are copied, any chunk size works. Pace it in real time (like a sound
// card): when more than MaxQueueMs is waiting it returns an error matching ErrQueueFull and
// nothing of this call was taken. After Close: ErrClosed.
func (a *AudioTrack) SendFloat32(pcm []float32) error {
	if err := a.check(); err != nil {
		return err
	}
	n, err := a.samplesPerChannel(len(pcm))
	if err != nil {
		return err
	}
	p := (*C.float)(unsafe.Pointer(&pcm[0]))
	err = a.do(func(h C.rmw_audio_track_t) C.rmw_status_t { return C.rmw_audio_track_send_f32(h, p, n) })
	runtime.KeepAlive(pcm)
	return err
}

// SendInt16 is SendFloat32 for interleaved 16-bit PCM.
func (a *AudioTrack) SendInt16(pcm []int16) error {
	if err := a.check(); err != nil {
		return err
	}
	n, err := a.samplesPerChannel(len(pcm))
	if err != nil {
		return err
	}
	p := (*C.int16_t)(unsafe.Pointer(&pcm[0]))
	err = a.do(func(h C.rmw_audio_track_t) C.rmw_status_t { return C.rmw_audio_track_send_s16(h, p, n) })
	runtime.KeepAlive(pcm)
	return err
}

// SetTarget re-aims the track (ErrNotFound for an unknown peer or session).
func (a *AudioTrack) SetTarget(target TrackTarget) error {
	return withTarget(target, func(kind C.int32_t, id *C.char) error {
		return a.do(func(h C.rmw_audio_track_t) C.rmw_status_t { return C.rmw_audio_track_set_target(h, kind, id) })
	})
}

// AudioTrackStats are the counters of an outgoing track.
type AudioTrackStats struct {
	Track         uint64 `json:"track"`          // the track's handle, as ID() (and in Transport.Stats)
	SamplesIn     uint64 `json:"samples_in"`     // samples per channel taken by Send*
	QueueFull     uint64 `json:"queue_full"`     // Send* calls refused with ErrQueueFull
	FramesEncoded uint64 `json:"frames_encoded"` // Opus frames encoded
	FramesDTX     uint64 `json:"frames_dtx"`     // frames not sent because DTX found them silent
	PacketsSent   uint64 `json:"packets_sent"`   // RTP packets sent (one per frame and peer)
	BytesSent     uint64 `json:"bytes_sent"`
	Peers         int    `json:"peers"`      // peers the last frame went to
	PeersBusy     int    `json:"peers_busy"` // target peers already carrying another track
}

// Stats returns the track's counters.
func (a *AudioTrack) Stats() (AudioTrackStats, error) {
	var st AudioTrackStats
	if err := a.check(); err != nil {
		return st, err
	}
	s, err := getString(func(buf *C.char, n *C.size_t) C.rmw_status_t {
		return C.rmw_audio_track_stats_json(a.h, buf, n)
	})
	runtime.KeepAlive(a)
	if err != nil {
		return st, a.closedErr(err)
	}
	err = json.Unmarshal([]byte(s), &st)
	return st, err
}

// Close stops the track: PCM already queued is still encoded and sent, then the handle is
// freed. Calling Close again, or after the transport was closed (which frees its tracks),
// returns nil. Later calls of other methods return an error matching ErrClosed.
func (a *AudioTrack) Close() error {
	var err error
	a.once.Do(func() {
		a.closed.Store(true)
		runtime.SetFinalizer(a, nil)
		if a.t.closed.Load() {
			return // freed with its transport
		}
		h := a.h
		err = call(func() C.rmw_status_t { return C.rmw_audio_track_free(h) })
		if err != nil && errors.Is(err, ErrInvalidHandle) && a.t.closed.Load() {
			err = nil // the transport was closed meanwhile
		}
		runtime.KeepAlive(a.t)
	})
	return err
}

// ---- received audio -------------------------------------------------------------------------

// SampleFormat is the sample format of received audio (rmw_sample_format_t), chosen by
// Config.AudioOutputFormat.
type SampleFormat int

// Sample formats.
const (
	SampleFloat32 SampleFormat = C.RMW_SAMPLE_F32 // interleaved float32 in [-1, 1] ("f32")
	SampleInt16   SampleFormat = C.RMW_SAMPLE_S16 // interleaved int16 ("s16")
)

func (f SampleFormat) String() string {
	switch f {
	case SampleFloat32:
		return "f32"
	case SampleInt16:
		return "s16"
	}
	return fmt.Sprintf("SampleFormat(%d)", int(f))
}

// AudioFrame is a block of decoded audio from one remote track, copied into Go memory.
// Exactly one of F32 and S16 holds the samples, as Format says.
type AudioFrame struct {
	PeerID            string // the sending peer
	TrackID           string // its track (as in EventTrackAdded)
	SampleRate        int    // Config.AudioOutputSampleRate
	Channels          int    // Config.AudioOutputChannels
	Format            SampleFormat
	F32               []float32 // Format == SampleFloat32: SamplesPerChannel*Channels interleaved samples
	S16               []int16   // Format == SampleInt16: SamplesPerChannel*Channels interleaved samples
	SamplesPerChannel int
	RTPTimestamp      uint32 // RTP timestamp (48 kHz clock) of the first sample
	ArrivalUs         uint64 // arrival of the packet, µs of CLOCK_MONOTONIC (see ClockUs)
	Level             uint8  // RFC 6464: 0 is full scale, 127 silence (-dBov)
	Concealed         bool   // the block was lost and concealed, or rebuilt from FEC
}

// Float32 returns the interleaved samples as float32 in [-1, 1] whatever the format (F32
// itself, or S16 converted).
func (f AudioFrame) Float32() []float32 {
	if f.Format == SampleFloat32 {
		return f.F32
	}
	out := make([]float32, len(f.S16))
	for i, v := range f.S16 {
		out[i] = float32(v) / 32768
	}
	return out
}

// Duration returns how much audio the frame holds.
func (f AudioFrame) Duration() time.Duration {
	if f.SampleRate <= 0 {
		return 0
	}
	return time.Duration(f.SamplesPerChannel) * time.Second / time.Duration(f.SampleRate)
}

// ClockUs returns microseconds of CLOCK_MONOTONIC, the clock of AudioFrame.ArrivalUs.
func ClockUs() uint64 { return uint64(C.rmw_clock_us()) }

// PollAudio waits up to timeout (0: do not wait; negative: until a frame comes or the
// transport is closed) for the next decoded audio frame of any remote track. It returns an
// error matching ErrTimeout when none came, ErrClosed once the transport is closed (also by
// another goroutine while PollAudio waits). When the application does not keep up, the
// library drops the oldest frames (Stats()["audio_frames_dropped"]).
func (t *Transport) PollAudio(timeout time.Duration) (AudioFrame, error) {
	var ms C.int32_t = -1
	if timeout >= 0 {
		// Round up, so that a positive timeout below 1 ms still waits.
		m := (timeout + time.Millisecond - 1) / time.Millisecond
		if m > math.MaxInt32 {
			m = math.MaxInt32
		}
		ms = C.int32_t(m)
	}
	// The C frame lives in C memory: the library writes its own pointers into it.
	cf := (*C.rmw_audio_frame_t)(C.calloc(1, C.size_t(unsafe.Sizeof(C.rmw_audio_frame_t{}))))
	defer C.free(unsafe.Pointer(cf))
	err := t.do(func(h C.rmw_transport_t) C.rmw_status_t { return C.rmw_transport_poll_audio(h, cf, ms) })
	if err != nil {
		if (errors.Is(err, ErrInvalidHandle) || errors.Is(err, ErrClosed)) && t.closed.Load() {
			return AudioFrame{}, errClosed("transport")
		}
		return AudioFrame{}, err
	}
	f := AudioFrame{
		SampleRate:        int(cf.sample_rate),
		Channels:          int(cf.channels),
		Format:            SampleFormat(cf.format),
		SamplesPerChannel: int(cf.samples_per_channel),
		RTPTimestamp:      uint32(cf.rtp_timestamp),
		ArrivalUs:         uint64(cf.arrival_us),
		Level:             uint8(cf.level),
		Concealed:         bool(cf.concealed),
	}
	if cf.peer_id != nil {
		f.PeerID = C.GoString(cf.peer_id)
	}
	if cf.track_id != nil {
		f.TrackID = C.GoString(cf.track_id)
	}
	n := f.SamplesPerChannel * f.Channels
	switch f.Format {
	case SampleFloat32:
		f.F32 = make([]float32, n)
		if n > 0 && cf.data != nil {
			copy(f.F32, unsafe.Slice((*float32)(cf.data), n))
		}
	case SampleInt16:
		f.S16 = make([]int16, n)
		if n > 0 && cf.data != nil {
			copy(f.S16, unsafe.Slice((*int16)(cf.data), n))
		}
	}
	C.rmw_audio_frame_release(cf)
	return f, nil
}

// NextAudio waits for the next decoded audio frame until ctx is done (then it returns
// ctx.Err()) or the transport is closed (an error matching ErrClosed).
func (t *Transport) NextAudio(ctx context.Context) (AudioFrame, error) {
	for {
		if err := ctx.Err(); err != nil {
			return AudioFrame{}, err
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
		f, err := t.PollAudio(timeout)
		if err == nil || !errors.Is(err, ErrTimeout) {
			return f, err
		}
	}
}
