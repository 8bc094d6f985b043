//! lobby routes over real sockets.
