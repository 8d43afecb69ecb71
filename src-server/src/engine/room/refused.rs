//! Why a `hello` is refused: the one list of refusals a room gives, each with the close code of
//! §3/§10 that tells a client what to do next.

use crate::protocol::close;

/// Why a `hello` was refused; each maps to the close code of §3/§10.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JoinError {
    /// A field is missing or malformed: `error` `bad_request`, then close 4400.
    #[error("{0}")]
    BadRequest(String),
    /// Unsupported protocol version: close 4426.
    #[error("{0}")]
    Version(String),
    /// Wrong code, key or token: close 4001.
    #[error("wrong join code, teacher key or token")]
    Credentials,
    /// The device was kicked from this lesson: close 4003.
    #[error("removed from this lesson by the teacher")]
    Kicked,
    /// The room is full: close 4029.
    #[error("the room is full")]
    Full,
    /// Too many knocks wait (in the room, or from this address, or for this device elsewhere): 4029.
    #[error("too many are waiting to be let in; try again in a moment")]
    TooManyWaiting,
    /// This address already holds `limits.max_students_per_address` seats: close 4029.
    #[error("too many students are joined from this address")]
    TooManyFromAddress,
    /// The room's budget of wrong join codes is spent: a student with a code must knock (the server
    /// turns the hello into a knock where it can; elsewhere, a relay say, 4029).
    #[error("too many wrong join codes have been tried; ask your teacher")]
    WaitingRoom,
    /// Every seat this device id may have is online: close 4029.
    #[error("this device is already in the lesson as many times as it may be")]
    TooManyFromDevice,
    /// The teacher's waiting room is on, and here (a relay) nobody can be let in: close 4029.
    #[error("the teacher is letting students in one by one; join from the classroom's network")]
    LetIn,
    /// The lesson has ended: close 4000.
    #[error("the lesson has ended")]
    Ended,
    /// This student opened too many second paths this minute: close 4029.
    #[error("too many second paths opened; the first one still works")]
    TooManySecondPaths,
    /// A second path to a relay's copy of the room whose student (this participant id) is not
    /// online here: the relay asks where it is (`Room::enter_second_elsewhere`), else close 4400.
    #[error("a second path needs its student online: resume on the first one, then open it")]
    NotHere(String),
}

impl JoinError {
    /// The close code for this refusal (the reason is the error's text).
    pub fn close_code(&self) -> u16 {
        match self {
            JoinError::BadRequest(_) | JoinError::NotHere(_) => close::PROTOCOL,
            JoinError::Version(_) => close::VERSION,
            JoinError::Credentials => close::BAD_CREDENTIALS,
            JoinError::Kicked => close::KICKED,
            JoinError::Full
            | JoinError::TooManyWaiting
            | JoinError::TooManyFromAddress
            | JoinError::WaitingRoom
            | JoinError::TooManyFromDevice
            | JoinError::LetIn
            | JoinError::TooManySecondPaths => close::RATE_LIMITED,
            JoinError::Ended => close::ENDED,
        }
    }
}
