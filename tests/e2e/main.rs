//! End-to-end: the sandbox and the web BFF over real sockets, as the README runs them.

mod dashboard;
mod sandbox;
