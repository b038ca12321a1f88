//! End-to-end: the sandbox and the BFFs over real sockets, as the README runs them.

mod brokers;
mod dashboard;
mod deployment;
mod iot;
mod mobile;
mod partner;
mod sandbox;
mod streaming;
