//! sessionbrowser routes over real sockets.
