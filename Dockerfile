# Careline: a static-ish Rust binary on a small Debian runtime, as non-root.
# Build:  docker build -t careline .
# Run:    docker run -p 8080:8080 -v careline-data:/data careline

FROM rust:1.95-bookworm AS build
WORKDIR /src
# Dependencies first, so that a code change does not rebuild them.
COPY Cargo.toml Cargo.lock ./
RUN mkdir src && echo 'fn main() {}' > src/main.rs && echo '' > src/lib.rs \
    && cargo build --release --locked && rm -rf src
COPY src src
COPY assets assets
COPY migrations migrations
RUN touch src/main.rs src/lib.rs && cargo build --release --locked

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home /data careline \
    && mkdir -p /data && chown careline /data
COPY --from=build /src/target/release/careline /usr/local/bin/careline
USER careline
WORKDIR /data
ENV CARELINE_BIND=0.0.0.0:8080 \
    CARELINE_DATA_DIR=/data \
    CARELINE_LOG_FORMAT=json
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --retries=3 CMD curl -fsS http://127.0.0.1:8080/healthz || exit 1
# SIGTERM: Careline stops accepting, closes sockets with 1001 and drains.
STOPSIGNAL SIGTERM
ENTRYPOINT ["careline"]
CMD ["serve"]
