//! The match-function types and service stubs, generated at build time from
//! `proto/matchFunction.proto` (package `accelbyte.matchmaking.matchfunction`).

#![allow(clippy::all, clippy::pedantic, missing_docs)]

tonic::include_proto!("accelbyte.matchmaking.matchfunction");
