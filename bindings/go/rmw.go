// Package rmw is the Go binding of remotemedia-webrtc (libremotemedia_webrtc, include
// <remotemedia_webrtc.h>): WebRTC peer connections, data channels, Opus audio tracks and
// VP8/VP9 video tracks set up through a signaling server, driven from Go.
//
// The binding only calls into C: events, audio and video frames are polled (Transport.Next,
// Transport.Events, Transport.PollAudio, Transport.PollVideo), no C code ever calls back into
// Go and no Go pointer is kept by C. Every object (Transport, DataChannel, AudioTrack,
// VideoTrack, SignalingServer) holds a 64-bit library handle; a handle that was closed gives
// ErrInvalidHandle or ErrClosed, never a crash.
package rmw

/*
#cgo pkg-config: remotemedia_webrtc
#include <stdlib.h>
#include <remotemedia_webrtc.h>
*/
import "C"

import (
	"errors"
	"fmt"
	"runtime"
	"unsafe"
)

// MaxMessageSize is the largest message SendData and DataChannel.Send accept.
const MaxMessageSize = C.RMW_MAX_MESSAGE_SIZE

// HeaderABIVersion is the ABI version of the header this package was compiled against.
const HeaderABIVersion = C.RMW_ABI_VERSION

// Version returns the library version, e.g. "0.1.0".
func Version() string { return C.GoString(C.rmw_version()) }

// ABIVersion returns the ABI version of the library loaded at run time; it should equal
// HeaderABIVersion.
func ABIVersion() uint32 { return uint32(C.rmw_abi_version()) }

// Status is a library status code (rmw_status_t): 0 for OK, negative for errors.
type Status int32

// Status codes of the C API.
const (
	StatusOK              Status = C.RMW_OK
	StatusInvalidArgument Status = C.RMW_ERR_INVALID_ARGUMENT
	StatusInvalidHandle   Status = C.RMW_ERR_INVALID_HANDLE
	StatusBufferTooSmall  Status = C.RMW_ERR_BUFFER_TOO_SMALL
	StatusTimeout         Status = C.RMW_ERR_TIMEOUT
	StatusNotFound        Status = C.RMW_ERR_NOT_FOUND
	StatusAlreadyExists   Status = C.RMW_ERR_ALREADY_EXISTS
	StatusMaxPeers        Status = C.RMW_ERR_MAX_PEERS
	StatusNotConnected    Status = C.RMW_ERR_NOT_CONNECTED
	StatusSignaling       Status = C.RMW_ERR_SIGNALING
	StatusWebRTC          Status = C.RMW_ERR_WEBRTC
	StatusConfig          Status = C.RMW_ERR_CONFIG
	StatusIO              Status = C.RMW_ERR_IO
	StatusClosed          Status = C.RMW_ERR_CLOSED
	StatusWouldBlock      Status = C.RMW_ERR_WOULD_BLOCK
	StatusInternal        Status = C.RMW_ERR_INTERNAL
	StatusQueueFull       Status = C.RMW_ERR_QUEUE_FULL
	StatusCodec           Status = C.RMW_ERR_CODEC
)

// String returns the C name of the status, e.g. "RMW_ERR_NOT_FOUND".
func (s Status) String() string { return C.GoString(C.rmw_status_string(C.int32_t(s))) }

// Error is an error returned by the library: its status and the library's message.
// Compare with the sentinels using errors.Is (only Status is compared):
//
//	if errors.Is(err, rmw.ErrNotFound) { ... }
type Error struct {
	Status  Status
	Message string
}

func (e *Error) Error() string {
	if e.Message == "" {
		return "rmw: " + e.Status.String()
	}
	return "rmw: " + e.Status.String() + ": " + e.Message
}

// Is reports whether target is an *Error with the same Status.
func (e *Error) Is(target error) bool {
	var t *Error
	if errors.As(target, &t) {
		return t.Status == e.Status
	}
	return false
}

// Sentinel errors, one per status, for errors.Is.
var (
	ErrInvalidArgument = &Error{Status: StatusInvalidArgument}
	ErrInvalidHandle   = &Error{Status: StatusInvalidHandle}
	ErrBufferTooSmall  = &Error{Status: StatusBufferTooSmall}
	ErrTimeout         = &Error{Status: StatusTimeout}
	ErrNotFound        = &Error{Status: StatusNotFound}
	ErrAlreadyExists   = &Error{Status: StatusAlreadyExists}
	ErrMaxPeers        = &Error{Status: StatusMaxPeers}
	ErrNotConnected    = &Error{Status: StatusNotConnected}
	ErrSignaling       = &Error{Status: StatusSignaling}
	ErrWebRTC          = &Error{Status: StatusWebRTC}
	ErrConfig          = &Error{Status: StatusConfig}
	ErrIO              = &Error{Status: StatusIO}
	ErrClosed          = &Error{Status: StatusClosed}
	ErrWouldBlock      = &Error{Status: StatusWouldBlock}
	ErrInternal        = &Error{Status: StatusInternal}
	// ErrQueueFull: an audio track's send queue is full (the encoder is behind); nothing of
	// that call was taken. (Video tracks never refuse a frame: the newest frame wins.)
	ErrQueueFull = &Error{Status: StatusQueueFull}
	// ErrCodec: the codec (libopus, libvpx) refused the data or the settings.
	ErrCodec = &Error{Status: StatusCodec}
)

// errClosed is returned by methods called after Close (without calling into C).
func errClosed(what string) error {
	return &Error{Status: StatusClosed, Message: what + " is closed"}
}

// call runs one C call and turns its status into an error. The OS thread is locked so that
// rmw_last_error_message (thread-local in the library) is read on the thread that failed.
func call(f func() C.rmw_status_t) error {
	runtime.LockOSThread()
	st := f()
	if st == C.RMW_OK {
		runtime.UnlockOSThread()
		return nil
	}
	msg := C.GoString(C.rmw_last_error_message())
	runtime.UnlockOSThread()
	return &Error{Status: Status(st), Message: msg}
}

// getString reads a text result with the size-query pattern.
func getString(f func(buf *C.char, n *C.size_t) C.rmw_status_t) (string, error) {
	var n C.size_t
	// Ask for the size first (buf NULL); then retry while the text grows in between.
	err := call(func() C.rmw_status_t { return f(nil, &n) })
	if err != nil && !errors.Is(err, ErrBufferTooSmall) {
		return "", err
	}
	for i := 0; i < 8; i++ {
		if n == 0 {
			n = 1
		}
		buf := (*C.char)(C.malloc(n))
		got := n
		err = call(func() C.rmw_status_t { return f(buf, &got) })
		if err == nil {
			s := C.GoString(buf)
			C.free(unsafe.Pointer(buf))
			return s, nil
		}
		C.free(unsafe.Pointer(buf))
		if !errors.Is(err, ErrBufferTooSmall) {
			return "", err
		}
		n = got
		if n < 64 {
			n = 64
		}
	}
	return "", fmt.Errorf("rmw: text result kept growing: %w", err)
}

// cString converts s to a C string (caller frees). Strings with NUL bytes are rejected.
func cString(s string) (*C.char, error) {
	for i := 0; i < len(s); i++ {
		if s[i] == 0 {
			return nil, &Error{Status: StatusInvalidArgument, Message: "string contains a NUL byte"}
		}
	}
	return C.CString(s), nil
}

// emptyBuf gives empty messages a valid non-NULL pointer.
var emptyBuf [1]byte

// bytesArg returns a pointer to data valid for the duration of one call (the library copies
// buffers before returning), and its length. An empty slice gives a valid non-NULL pointer.
func bytesArg(data []byte) (*C.uint8_t, C.size_t) {
	if len(data) == 0 {
		return (*C.uint8_t)(unsafe.Pointer(&emptyBuf[0])), 0
	}
	return (*C.uint8_t)(unsafe.Pointer(&data[0])), C.size_t(len(data))
}
