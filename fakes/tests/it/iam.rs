//! iam routes over real sockets.
