//! The `TraceService/Export` gRPC service with a codec that answers malformed protobuf with
//! `INVALID_ARGUMENT`, and oversized messages with `RESOURCE_EXHAUSTED`.
//!
//! The generated server decodes with tonic's prost codec, which reports a decode failure as
//! `INTERNAL`; OTLP clients treat that as retryable and would resend the same bad bytes. This
//! service is the generated one's routing with our own decoder.
//!
//! tonic bounds a message by `max_decoding_message_size` twice: before reading it, by its length
//! prefix, answering `OUT_OF_RANGE`, and while inflating it, stopping at the limit with
//! `RESOURCE_EXHAUSTED`, so a gzip bomb is never inflated whole. OTLP clients retry
//! `OUT_OF_RANGE`, so the first answer is rewritten to `RESOURCE_EXHAUSTED`, which they retry
//! only when it carries retry information.

use std::convert::Infallible;
use std::task::{Context, Poll};

use bytes::Buf;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use tonic::codec::{Codec, CompressionEncoding, DecodeBuf, Decoder};
use tonic::codegen::{http, BoxFuture, Service, StdError};
use tonic::server::{Grpc, NamedService, UnaryService};
use tonic::{Code, Request, Response, Status};
use tonic_prost::ProstCodec;

use crate::guard::Admitted;

const EXPORT_PATH: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";

/// What the service calls for each decoded request.
pub trait Export: Clone + Send + Sync + 'static {
    fn export(
        &self,
        request: ExportTraceServiceRequest,
        admitted: Admitted,
    ) -> impl std::future::Future<Output = Result<ExportTraceServiceResponse, Status>> + Send;
}

/// The tower service mounted on the tonic server.
#[derive(Clone)]
pub struct TraceServiceRoute<E> {
    export: E,
    max_request_bytes: usize,
}

impl<E: Export> TraceServiceRoute<E> {
    pub fn new(export: E, max_request_bytes: usize) -> Self {
        Self {
            export,
            max_request_bytes,
        }
    }
}

impl<E> NamedService for TraceServiceRoute<E> {
    const NAME: &'static str = "opentelemetry.proto.collector.trace.v1.TraceService";
}

impl<E, B> Service<http::Request<B>> for TraceServiceRoute<E>
where
    E: Export,
    B: tonic::codegen::Body + Send + 'static,
    B::Error: Into<StdError> + Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        if req.uri().path() != EXPORT_PATH {
            let status = Status::unimplemented(format!("no such method {}", req.uri().path()));
            return Box::pin(async move { Ok(status.into_http()) });
        }
        let method = ExportMethod(self.export.clone());
        let limit = self.max_request_bytes;
        Box::pin(async move {
            let mut grpc = Grpc::new(OtlpCodec)
                .accept_compressed(CompressionEncoding::Gzip)
                .send_compressed(CompressionEncoding::Gzip)
                .max_decoding_message_size(limit);
            Ok(out_of_range_as_exhausted(grpc.unary(method, req).await))
        })
    }
}

/// Rewrites tonic's `OUT_OF_RANGE` for an oversized message as `RESOURCE_EXHAUSTED`.
fn out_of_range_as_exhausted(
    response: http::Response<tonic::body::Body>,
) -> http::Response<tonic::body::Body> {
    match Status::from_header_map(response.headers()) {
        Some(status) if status.code() == Code::OutOfRange => {
            Status::resource_exhausted(status.message().to_owned()).into_http()
        }
        _ => response,
    }
}

struct ExportMethod<E>(E);

impl<E: Export> UnaryService<ExportTraceServiceRequest> for ExportMethod<E> {
    type Response = ExportTraceServiceResponse;
    type Future = BoxFuture<Response<Self::Response>, Status>;

    fn call(&mut self, request: Request<ExportTraceServiceRequest>) -> Self::Future {
        let export = self.0.clone();
        // Left by the guard's interceptor; without one, nothing is checked.
        let admitted = request.extensions().get::<Admitted>().copied();
        let admitted = admitted.unwrap_or(Admitted { may_trigger: true });
        Box::pin(async move {
            let response = export.export(request.into_inner(), admitted).await;
            response.map(Response::new)
        })
    }
}

/// Prost encoding of responses; decoding of requests that reports bad bytes as the client's
/// fault.
#[derive(Default)]
struct OtlpCodec;

impl Codec for OtlpCodec {
    type Encode = ExportTraceServiceResponse;
    type Decode = ExportTraceServiceRequest;
    type Encoder = <ProstCodec<Self::Encode, Self::Decode> as Codec>::Encoder;
    type Decoder = OtlpDecoder;

    fn encoder(&mut self) -> Self::Encoder {
        ProstCodec::<Self::Encode, Self::Decode>::default().encoder()
    }

    fn decoder(&mut self) -> Self::Decoder {
        OtlpDecoder
    }
}

struct OtlpDecoder;

impl Decoder for OtlpDecoder {
    type Item = ExportTraceServiceRequest;
    type Error = Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<Self::Item>, Status> {
        // tonic holds the message in one `BytesMut`: taking it out whole does not copy, and
        // the slice decodes faster than the buffer would.
        let message = buf.copy_to_bytes(buf.remaining());
        wbpf_otlp::decode::protobuf(&message)
            .map(Some)
            .map_err(|err| Status::invalid_argument(err.to_string()))
    }
}
