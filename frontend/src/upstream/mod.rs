//! Scripts on worker pools: everything between a routed request and a worker's answer.
//!
//! `dispatch` holds each pool's slots and FIFO queue; `worker_call` leases a slot and a worker
//! connection (`worker_connection`, speaking FastCGI through `fastcgi_client`, uwsgi through
//! `uwsgi_client`, or HTTP/1.1 through `http_client` with `http_request`; both read the answer
//! with `answer_reader`) for one request, with retries and a deadline, and
//! `script_error` classifies what can go wrong. The reply is either buffered (`buffered`, into a
//! `response_buffer`, so the worker is free at once) or streamed (`streaming`), and turned into
//! the client's response by `worker_response`; the worker's STDERR goes to `worker_stderr`. A
//! reply that names a file (`X-Accel-Redirect`, `X-Sendfile`) is answered by `sendfile`.

pub(crate) mod answer_reader;
pub(crate) mod buffered;
pub(crate) mod dispatch;
pub(crate) mod fastcgi_client;
pub(crate) mod http_client;
pub(crate) mod http_request;
pub(crate) mod response_buffer;
pub(crate) mod script_error;
pub(crate) mod sendfile;
pub(crate) mod streaming;
pub(crate) mod uwsgi_client;
pub(crate) mod worker_call;
pub(crate) mod worker_connection;
pub(crate) mod worker_response;
pub(crate) mod worker_stderr;
