//! dsmc routes over real sockets.
