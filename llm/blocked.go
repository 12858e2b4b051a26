package llm

import "errors"

// ErrBlocked matches an error of a prompt or an answer the provider
// blocked by policy (safety, recitation, prohibited content). It is also
// permanent: the same prompt is refused again. A caller that can do
// without the answer for that prompt alone (a VoC batch falls back to the
// rule table) tells it apart from a refused request (a bad key) with
// errors.Is.
var ErrBlocked = errors.New("llm: blocked by the provider's policy")

// Blocked marks err as a policy block; its message is err's.
func Blocked(err error) error { return blockedError{err} }

type blockedError struct{ error }

func (e blockedError) Unwrap() error      { return e.error }
func (blockedError) Is(target error) bool { return target == ErrBlocked }
