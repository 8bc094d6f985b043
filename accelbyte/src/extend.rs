//! The AGS Extend match-function gRPC interface (`proto/matchFunction.proto`, package
//! `accelbyte.matchmaking.matchfunction`): its messages, the client AGS Matchmaking v2 uses to
//! call a match function, and the server trait a match function implements. Generated at build
//! time (behind the `match-function` feature) so the matchmaker (server) and fakes' match2
//! (client) share one copy of the contract.

#![allow(clippy::all, clippy::pedantic, missing_docs)]

tonic::include_proto!("accelbyte.matchmaking.matchfunction");
