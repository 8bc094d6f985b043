# The matchmaker's rules as an AGS Extend match function: `matchmaker match-function` serving
# gRPC on 6565, the port AGS Extend calls. Build from the repository root:
#   docker build -f matchmaker/extend.Dockerfile -t matchbench-match-function .
# No protoc is needed: the proto is compiled in Rust (protox) during the build.

FROM rust:1-bookworm AS builder
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p matchmaker --bin matchmaker \
    && cp target/release/matchmaker /matchmaker

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/*
COPY --from=builder /matchmaker /usr/local/bin/matchmaker
USER 65534:65534
# Callers' bearer tokens are checked against IAM once AB_BASE_URL (with AB_CLIENT_ID,
# AB_CLIENT_SECRET, AB_NAMESPACE, as the Extend app's environment sets them) is given;
# PLUGIN_GRPC_SERVER_AUTH_ENABLED=false turns the check off.
# The match function's gRPC port (AGS Extend).
EXPOSE 6565
ENV MATCHMAKER_GRPC_ADDR=0.0.0.0:6565
CMD ["matchmaker", "match-function"]
