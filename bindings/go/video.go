package rmw

/*
#include <stdlib.h>
#include <remotemedia_webrtc.h>

// rmw_go_video_track_send builds the rmw_raw_video_frame_t on the C stack from plain
// arguments, so that Go passes only pointers to byte memory (the planes, which hold no Go
// pointers) and only for the duration of the call: the library copies the planes before it
// returns. A Go struct holding Go pointers could not be passed to C without pinning.
static rmw_status_t rmw_go_video_track_send(rmw_video_track_t track, int32_t format, uint32_t width, uint32_t height,
		const uint8_t *p0, uint32_t s0, size_t n0,
		const uint8_t *p1, uint32_t s1, size_t n1,
		const uint8_t *p2, uint32_t s2, size_t n2) {
	rmw_raw_video_frame_t f;
	f.format = format;
	f.width = width;
	f.height = height;
	f.planes[0] = p0; f.planes[1] = p1; f.planes[2] = p2;
	f.strides[0] = s0; f.strides[1] = s1; f.strides[2] = s2;
	f.sizes[0] = n0; f.sizes[1] = n1; f.sizes[2] = n2;
	return rmw_video_track_send(track, &f);
}
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

// ---- configuration --------------------------------------------------------------------------

// VideoSpeedDefault as VideoTrackConfig.Speed selects the codec's real-time default
// (RMW_VIDEO_SPEED_DEFAULT).
const VideoSpeedDefault = C.RMW_VIDEO_SPEED_DEFAULT

// VideoClockRate is the RTP clock of video (90 kHz): the clock of VideoFrame.RTPTimestamp and
// EventTrackAdded.ClockRate of video tracks.
const VideoClockRate = 90000

// VideoTrackConfig says how an outgoing video track encodes (rmw_video_track_config_t). Start
// from DefaultVideoTrackConfig and change what you need: every field is meaningful, zero
// included.
type VideoTrackConfig struct {
	BitrateKbps      int // target bitrate, 30..50000 kbit/s (default 1500), the ceiling; SetBitrate changes it
	MinBitrateKbps   int // floor when following peers' bandwidth estimates (REMB), 30..BitrateKbps (default 150)
	FPS              int // nominal frame rate for rate control, 1..120 (default 30)
	KeyframeInterval int // longest run of frames between keyframes (0: libvpx decides; default 3000)
	Speed            int // libvpx cpu-used, -16..16 (higher is faster), or VideoSpeedDefault (the default)
	Threads          int // encoder threads, 1..16 (default 1)
}

// DefaultVideoTrackConfig returns the library's defaults (rmw_video_track_config_default):
// 1500 kbit/s, 30 fps, a keyframe at least every 3000 frames, the codec's real-time speed,
// one encoder thread.
func DefaultVideoTrackConfig() VideoTrackConfig {
	d := C.rmw_video_track_config_default()
	return VideoTrackConfig{
		BitrateKbps:      int(d.bitrate_kbps),
		MinBitrateKbps:   int(d.min_bitrate_kbps),
		FPS:              int(d.fps),
		KeyframeInterval: int(d.keyframe_interval),
		Speed:            int(d.speed),
		Threads:          int(d.threads),
	}
}

func (c *VideoTrackConfig) toC() (C.rmw_video_track_config_t, error) {
	var out C.rmw_video_track_config_t
	var bad error
	u32 := func(name string, v int) C.uint32_t {
		if (v < 0 || uint64(v) > math.MaxUint32) && bad == nil {
			bad = &Error{Status: StatusInvalidArgument, Message: fmt.Sprintf("%s %d is out of range", name, v)}
		}
		return C.uint32_t(v)
	}
	out.bitrate_kbps = u32("bitrate_kbps", c.BitrateKbps)
	out.min_bitrate_kbps = u32("min_bitrate_kbps", c.MinBitrateKbps)
	out.fps = u32("fps", c.FPS)
	out.keyframe_interval = u32("keyframe_interval", c.KeyframeInterval)
	if (c.Speed < math.MinInt32 || c.Speed > math.MaxInt32) && bad == nil {
		bad = &Error{Status: StatusInvalidArgument, Message: fmt.Sprintf("speed %d is out of range", c.Speed)}
	}
	out.speed = C.int32_t(c.Speed)
	out.threads = u32("threads", c.Threads)
	return out, bad
}

// ---- frames you send ------------------------------------------------------------------------

// PixelFormat is the layout of a frame you send (RMW_PIXEL_*).
type PixelFormat int32

// Pixel formats of RawVideoFrame.
const (
	PixelI420 PixelFormat = C.RMW_PIXEL_I420 // planes Y, U, V; chroma (Width+1)/2 x (Height+1)/2
	PixelNV12 PixelFormat = C.RMW_PIXEL_NV12 // planes Y, interleaved UV
	PixelRGBA PixelFormat = C.RMW_PIXEL_RGBA // one plane, bytes R, G, B, A
	PixelBGRA PixelFormat = C.RMW_PIXEL_BGRA // one plane, bytes B, G, R, A
)

func (f PixelFormat) String() string {
	switch f {
	case PixelI420:
		return "i420"
	case PixelNV12:
		return "nv12"
	case PixelRGBA:
		return "rgba"
	case PixelBGRA:
		return "bgra"
	}
	return fmt.Sprintf("PixelFormat(%d)", int(f))
}

// planes returns how many planes the format uses (0 for an unknown format).
func (f PixelFormat) planes() int {
	switch f {
	case PixelI420:
		return 3
	case PixelNV12:
		return 2
	case PixelRGBA, PixelBGRA:
		return 1
	}
	return 0
}

// RawVideoFrame is a frame to send (rmw_raw_video_frame_t). Planes holds the planes the
// format uses (I420: Y, U, V; NV12: Y, UV; RGBA/BGRA: one), each at least Strides[i] * rows
// bytes (rows: Height, or (Height+1)/2 for chroma planes). Strides are bytes per row, at
// least the row's width in bytes; a nil Strides means tight rows (Width, (Width+1)/2 for I420
// chroma, 2*((Width+1)/2) for NV12's UV, 4*Width for RGBA/BGRA).
type RawVideoFrame struct {
	Format  PixelFormat
	Width   int
	Height  int
	Planes  [][]byte
	Strides []int
}

// NewI420Frame returns a black I420 frame of tight planes to fill in (Y 16, U and V 128).
func NewI420Frame(width, height int) RawVideoFrame {
	cw, ch := (width+1)/2, (height+1)/2
	f := RawVideoFrame{Format: PixelI420, Width: width, Height: height,
		Planes:  [][]byte{make([]byte, width*height), make([]byte, cw*ch), make([]byte, cw*ch)},
		Strides: []int{width, cw, cw}}
	for i := range f.Planes[0] {
		f.Planes[0][i] = 16
	}
	for _, p := range f.Planes[1:] {
		for i := range p {
			p[i] = 128
		}
	}
	return f
}

// tightStrides returns the strides of tight rows for the format.
func (f *RawVideoFrame) tightStrides() []int {
	cw := (f.Width + 1) / 2
	switch f.Format {
	case PixelI420:
		return []int{f.Width, cw, cw}
	case PixelNV12:
		return []int{f.Width, 2 * cw}
	case PixelRGBA, PixelBGRA:
		return []int{4 * f.Width}
	}
	return nil
}

// ---- outgoing tracks ------------------------------------------------------------------------

// VideoTrack is an outgoing VP8/VP9 track of a transport, fed with raw frames by Send. Its
// methods are safe for concurrent use. Close it when done; it is closed with its transport,
// and a finalizer closes it once unreachable (a peer carries one outgoing video track at a
// time, so a forgotten track would keep its peers busy).
type VideoTrack struct {
	t      *Transport
	h      C.rmw_video_track_t
	cfg    VideoTrackConfig
	closed atomic.Bool
	once   sync.Once
}

// AddVideoTrack creates an outgoing video track sending to target, encoding as cfg says (nil:
// DefaultVideoTrackConfig). Each peer gets the codec negotiated with it (Config.VideoCodec
// when the peer accepts it). Errors: ErrInvalidArgument (a bad setting, or EnableVideo false
// in the transport's Config), ErrNotFound (the target peer or session does not exist). A
// peer carries one outgoing video track at a time: a second track aimed at it skips it
// (VideoTrackStats.PeersBusy counts it).
func (t *Transport) AddVideoTrack(target TrackTarget, cfg *VideoTrackConfig) (*VideoTrack, error) {
	c := DefaultVideoTrackConfig()
	if cfg != nil {
		c = *cfg
	}
	ccfg, err := c.toC()
	if err != nil {
		return nil, err
	}
	var h C.rmw_video_track_t
	err = withTarget(target, func(kind C.int32_t, id *C.char) error {
		return t.do(func(th C.rmw_transport_t) C.rmw_status_t {
			return C.rmw_video_track_new(th, &ccfg, kind, id, &h)
		})
	})
	if err != nil {
		return nil, err
	}
	v := &VideoTrack{t: t, h: h, cfg: c}
	runtime.SetFinalizer(v, (*VideoTrack).Close)
	return v, nil
}

// ID returns the track's library handle (rmw_video_track_t).
func (v *VideoTrack) ID() uint64 { return uint64(v.h) }

// Config returns the configuration the track was created with (SetBitrate does not change
// it; Stats().TargetBitrateKbps has the current bitrate).
func (v *VideoTrack) Config() VideoTrackConfig { return v.cfg }

// check returns an ErrClosed error if the track or its transport was closed.
func (v *VideoTrack) check() error {
	if v.closed.Load() {
		return errClosed("video track")
	}
	return v.t.check()
}

// closedErr turns ErrInvalidHandle into ErrClosed when the track or its transport was closed
// meanwhile (by another goroutine).
func (v *VideoTrack) closedErr(err error) error {
	if err != nil && errors.Is(err, ErrInvalidHandle) {
		if cerr := v.check(); cerr != nil {
			return cerr
		}
	}
	return err
}

func (v *VideoTrack) do(f func(h C.rmw_video_track_t) C.rmw_status_t) error {
	if err := v.check(); err != nil {
		return err
	}
	err := call(func() C.rmw_status_t { return f(v.h) })
	runtime.KeepAlive(v)
	return v.closedErr(err)
}

func invalidFrame(format string, args ...any) error {
	return &Error{Status: StatusInvalidArgument, Message: fmt.Sprintf(format, args...)}
}

// Send copies the frame and returns without waiting for the encoder, which converts it to
// I420, encodes and sends it on a thread of its own. If the encoder has not taken the
// previous frame yet, that one is dropped: the newest frame wins (Stats().FramesDropped).
// The size may change from one frame to the next (the encoder restarts with a keyframe).
// A bad size, stride, plane or format gives an error matching ErrInvalidArgument; after
// Close, ErrClosed. The planes are read during the call only.
func (v *VideoTrack) Send(frame RawVideoFrame) error {
	if err := v.check(); err != nil {
		return err
	}
	if frame.Width < 0 || frame.Height < 0 || uint64(frame.Width) > math.MaxUint32 || uint64(frame.Height) > math.MaxUint32 {
		return invalidFrame("invalid frame size %dx%d", frame.Width, frame.Height)
	}
	n := frame.Format.planes()
	known := n > 0
	if !known {
		n = 3 // unknown format: passed on as is, the library names the error
	} else if len(frame.Planes) < n {
		return invalidFrame("a %s frame has %d planes, got %d", frame.Format, n, len(frame.Planes))
	}
	strides := frame.Strides
	if strides == nil {
		strides = frame.tightStrides()
	}
	var ptr [3]*C.uint8_t
	var stride [3]C.uint32_t
	var size [3]C.size_t
	for i := 0; i < n && i < len(frame.Planes); i++ {
		s := 0
		if i < len(strides) {
			s = strides[i]
		} else if known {
			return invalidFrame("no stride for plane %d", i)
		}
		if s < 0 || uint64(s) > math.MaxUint32 {
			return invalidFrame("stride %d of plane %d is out of range", s, i)
		}
		stride[i] = C.uint32_t(s)
		if p := frame.Planes[i]; len(p) > 0 {
			ptr[i] = (*C.uint8_t)(unsafe.Pointer(&p[0]))
			size[i] = C.size_t(len(p))
		}
	}
	err := v.do(func(h C.rmw_video_track_t) C.rmw_status_t {
		return C.rmw_go_video_track_send(h, C.int32_t(frame.Format), C.uint32_t(frame.Width), C.uint32_t(frame.Height),
			ptr[0], stride[0], size[0], ptr[1], stride[1], size[1], ptr[2], stride[2], size[2])
	})
	runtime.KeepAlive(frame.Planes)
	return err
}

// SetTarget re-aims the track (ErrNotFound for an unknown peer or session).
func (v *VideoTrack) SetTarget(target TrackTarget) error {
	return withTarget(target, func(kind C.int32_t, id *C.char) error {
		return v.do(func(h C.rmw_video_track_t) C.rmw_status_t { return C.rmw_video_track_set_target(h, kind, id) })
	})
}

// SetBitrate changes the target bitrate (30..50000 kbit/s) from the next frame on.
func (v *VideoTrack) SetBitrate(kbps int) error {
	if kbps < 0 || uint64(kbps) > math.MaxUint32 {
		return invalidFrame("bitrate_kbps %d is out of range", kbps)
	}
	return v.do(func(h C.rmw_video_track_t) C.rmw_status_t { return C.rmw_video_track_set_bitrate(h, C.uint32_t(kbps)) })
}

// RequestKeyframe makes the next frame sent a keyframe (peers' PLI/FIR do this by themselves).
func (v *VideoTrack) RequestKeyframe() error {
	return v.do(func(h C.rmw_video_track_t) C.rmw_status_t { return C.rmw_video_track_request_keyframe(h) })
}

// VideoTrackStats are the counters of an outgoing video track.
type VideoTrackStats struct {
	Track              uint64 `json:"track"`               // the track's handle, as ID() (Transport.Stats()["video_tracks"] shows an internal number instead)
	FramesIn           uint64 `json:"frames_in"`           // frames taken by Send
	FramesDropped      uint64 `json:"frames_dropped"`      // replaced by a newer frame before the encoder took them
	FramesEncoded      uint64 `json:"frames_encoded"`      // frames encoded (once per codec in use)
	KeyframesEncoded   uint64 `json:"keyframes_encoded"`   //
	KeyframesRequested uint64 `json:"keyframes_requested"` // by peers (PLI/FIR) or a peer joining
	PacketsSent        uint64 `json:"packets_sent"`        // RTP packets, all peers
	BytesSent          uint64 `json:"bytes_sent"`          //
	TargetBitrateKbps  int    `json:"target_bitrate_kbps"` //
	Width              int    `json:"width"`               // size of the last frame encoded
	Height             int    `json:"height"`              //
	Peers              int    `json:"peers"`               // peers the last frame went to
	PeersBusy          int    `json:"peers_busy"`          // target peers already carrying another video track
	EncodeErrors       uint64 `json:"encode_errors"`       //
}

// Stats returns the track's counters.
func (v *VideoTrack) Stats() (VideoTrackStats, error) {
	var st VideoTrackStats
	if err := v.check(); err != nil {
		return st, err
	}
	s, err := getString(func(buf *C.char, n *C.size_t) C.rmw_status_t {
		return C.rmw_video_track_stats_json(v.h, buf, n)
	})
	runtime.KeepAlive(v)
	if err != nil {
		return st, v.closedErr(err)
	}
	err = json.Unmarshal([]byte(s), &st)
	return st, err
}

// Close stops the track (a frame not yet encoded is still sent) and frees the handle.
// Calling Close again, or after the transport was closed (which frees its tracks), returns
// nil. Later calls of other methods return an error matching ErrClosed.
func (v *VideoTrack) Close() error {
	var err error
	v.once.Do(func() {
		v.closed.Store(true)
		runtime.SetFinalizer(v, nil)
		if v.t.closed.Load() {
			return // freed with its transport
		}
		h := v.h
		err = call(func() C.rmw_status_t { return C.rmw_video_track_free(h) })
		if err != nil && errors.Is(err, ErrInvalidHandle) && v.t.closed.Load() {
			err = nil // the transport was closed meanwhile
		}
		runtime.KeepAlive(v.t)
	})
	return err
}

// ---- received video -------------------------------------------------------------------------

// VideoFormat is the layout of received frames (rmw_video_format_t), chosen by
// Config.VideoOutputFormat.
type VideoFormat int

// Received frame layouts.
const (
	VideoI420 VideoFormat = C.RMW_VIDEO_I420 // planes Y, U, V ("i420", the default)
	VideoRGBA VideoFormat = C.RMW_VIDEO_RGBA // one plane of R, G, B, A bytes ("rgba")
)

func (f VideoFormat) String() string {
	switch f {
	case VideoI420:
		return "i420"
	case VideoRGBA:
		return "rgba"
	}
	return fmt.Sprintf("VideoFormat(%d)", int(f))
}

// VideoFrame is a decoded frame from one remote track, copied into Go memory.
type VideoFrame struct {
	PeerID  string // the sending peer
	TrackID string // its track (as in EventTrackAdded)
	Codec   string // "vp8" or "vp9"
	Width   int
	Height  int
	Format  VideoFormat
	// VideoI420: Y, U, V, with chroma planes (Width+1)/2 x (Height+1)/2; VideoRGBA: one plane.
	// Plane i holds Strides[i] * rows bytes; pixel (x, y) of Y is Planes[0][y*Strides[0]+x].
	Planes       [][]byte
	Strides      []int
	RTPTimestamp uint32 // RTP timestamp (90 kHz clock, VideoClockRate)
	ArrivalUs    uint64 // arrival of the frame's last packet, µs of CLOCK_MONOTONIC (see ClockUs)
	Keyframe     bool
}

// PollVideo waits up to timeout (0: do not wait; negative: until a frame comes or the
// transport is closed) for the next decoded video frame of any remote track. It returns an
// error matching ErrTimeout when none came, ErrClosed once the transport is closed (also by
// another goroutine while PollVideo waits). The library keeps only the newest
// Config.VideoQueueCapacity frames (default 8): poll continuously (e.g. from a goroutine of
// its own) or frames are dropped, oldest first (Stats()["video_frames_dropped"]).
func (t *Transport) PollVideo(timeout time.Duration) (VideoFrame, error) {
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
	cf := (*C.rmw_video_frame_t)(C.calloc(1, C.size_t(unsafe.Sizeof(C.rmw_video_frame_t{}))))
	defer C.free(unsafe.Pointer(cf))
	err := t.do(func(h C.rmw_transport_t) C.rmw_status_t { return C.rmw_transport_poll_video(h, cf, ms) })
	if err != nil {
		if (errors.Is(err, ErrInvalidHandle) || errors.Is(err, ErrClosed)) && t.closed.Load() {
			return VideoFrame{}, errClosed("transport")
		}
		return VideoFrame{}, err
	}
	defer C.rmw_video_frame_release(cf)
	f := VideoFrame{
		Width:        int(cf.width),
		Height:       int(cf.height),
		Format:       VideoFormat(cf.format),
		RTPTimestamp: uint32(cf.rtp_timestamp),
		ArrivalUs:    uint64(cf.arrival_us),
		Keyframe:     bool(cf.keyframe),
	}
	if cf.peer_id != nil {
		f.PeerID = C.GoString(cf.peer_id)
	}
	if cf.track_id != nil {
		f.TrackID = C.GoString(cf.track_id)
	}
	if cf.codec != nil {
		f.Codec = C.GoString(cf.codec)
	}
	// Plane i: rows of rowBytes at strides[i]. The C frame carries no plane sizes, so only
	// the bytes the layout guarantees are read (the last row without its padding); the copy
	// is stride * rows long.
	type plane struct{ rowBytes, rows int }
	var layout []plane
	cw, ch := (f.Width+1)/2, (f.Height+1)/2
	switch f.Format {
	case VideoI420:
		layout = []plane{{f.Width, f.Height}, {cw, ch}, {cw, ch}}
	case VideoRGBA:
		layout = []plane{{4 * f.Width, f.Height}}
	default:
		return VideoFrame{}, &Error{Status: StatusInternal, Message: fmt.Sprintf("unknown video frame format %d", int(cf.format))}
	}
	for i, l := range layout {
		stride := int(cf.strides[i])
		p := cf.planes[i]
		if p == nil || stride < l.rowBytes || l.rows <= 0 {
			return VideoFrame{}, &Error{Status: StatusInternal,
				Message: fmt.Sprintf("video frame plane %d: stride %d for rows of %d bytes", i, stride, l.rowBytes)}
		}
		buf := make([]byte, stride*l.rows)
		copy(buf, unsafe.Slice((*byte)(unsafe.Pointer(p)), stride*(l.rows-1)+l.rowBytes))
		f.Planes = append(f.Planes, buf)
		f.Strides = append(f.Strides, stride)
	}
	return f, nil
}

// NextVideo waits for the next decoded video frame until ctx is done (then it returns
// ctx.Err()) or the transport is closed (an error matching ErrClosed).
func (t *Transport) NextVideo(ctx context.Context) (VideoFrame, error) {
	for {
		if err := ctx.Err(); err != nil {
			return VideoFrame{}, err
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
		f, err := t.PollVideo(timeout)
		if err == nil || !errors.Is(err, ErrTimeout) {
			return f, err
		}
	}
}
