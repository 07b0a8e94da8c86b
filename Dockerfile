# Careline: a static-ish Rust binary on a small Debian runtime, as non-root.
# Build:  docker build -t careline .
# Run:    docker run -p 8080:8080 -v careline-data:/data careline

FROM rust:1.95-bookworm AS build
WORKDIR /src
# Dependencies first, so that a code change does not rebuild them. The
# workspace's manifests must all be there for cargo to read Cargo.toml: the
# load generator (load-tests/, a workspace member) and the declared bench get
# empty stand-ins; only the server binary is built.
COPY Cargo.toml Cargo.lock ./
COPY load-tests/Cargo.toml load-tests/Cargo.toml
RUN mkdir -p src benches load-tests/src \
    && echo 'fn main() {}' > src/main.rs && echo '' > src/lib.rs \
    && echo 'fn main() {}' > benches/login_timing.rs \
    && echo 'fn main() {}' > load-tests/src/main.rs && echo '' > load-tests/src/lib.rs \
    && cargo build --release --locked -p careline --bin careline && rm -rf src
COPY src src
COPY assets assets
COPY migrations migrations
RUN touch src/main.rs src/lib.rs && cargo build --release --locked -p careline --bin careline

FROM debian:bookworm-slim
# A numeric user, so that Kubernetes' runAsNonRoot can check it.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 careline \
    && useradd --system --uid 10001 --gid 10001 --home /data careline \
    && mkdir -p /data/blobs && chown -R careline:careline /data
COPY --from=build /src/target/release/careline /usr/local/bin/careline
USER 10001:10001
WORKDIR /data
ENV CARELINE_BIND=0.0.0.0:8080 \
    CARELINE_DATA_DIR=/data \
    CARELINE_LOG_FORMAT=json
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --retries=3 CMD curl -fsS http://127.0.0.1:8080/healthz || exit 1
# SIGTERM: Careline stops accepting, closes sockets with 1001 and waits up to
# 10 s for them to go.
STOPSIGNAL SIGTERM
ENTRYPOINT ["careline"]
CMD ["serve"]
