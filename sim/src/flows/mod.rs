//! Player flows other than the tutorial's (which lives in [`crate::player`]): each runs one
//! search of a party and records one outcome per member into the worker's recorder, so the
//! metrics, reports and invariant check stay the same whichever flow a scenario picks.

pub mod match2;
pub mod party;
