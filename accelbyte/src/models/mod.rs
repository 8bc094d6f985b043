//! Wire models: the JSON bodies AGS serves and accepts, field for field.
//!
//! These types mirror the AccelByte swagger specs (see the contract doc) and nothing else: they
//! carry no domain logic. Request types keep required fields required, so a missing field is a
//! deserialisation error the server can turn into a 400; response types default every field when
//! reading, because a client must survive a server that leaves an optional field out.

pub mod dsmc;
pub mod error;
pub mod iam;
pub mod lobby;
pub mod match2;
pub mod matchmaking;
pub mod session;
pub mod sessionbrowser;
