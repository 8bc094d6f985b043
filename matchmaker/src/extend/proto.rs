//! The match-function types and service stubs: the contract lives in `accelbyte::extend`
//! (shared with fakes' match2, which calls match functions), re-exported here.

pub use accelbyte::extend::*;
