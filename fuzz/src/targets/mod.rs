//! One module per fuzzed input: lobby frames, matchmaking request bodies, fault files,
//! scenario files, bearer tokens.

pub mod faults;
pub mod frame;
pub mod request;
pub mod scenario;
pub mod token;
