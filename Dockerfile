# syntax=docker/dockerfile:1
# Images of the operator and the two example workloads, from one build stage:
#   docker build --target operator     -t REGISTRY/trainloop:0.1.0 .
#   docker build --target trainer      -t REGISTRY/trainloop-example-trainer:0.1.0 .
#   docker build --target model-server -t REGISTRY/trainloop-example-model-server:0.1.0 .
# Each binary is linked statically against musl and runs on distroless/static as a non-root
# user (65532, "nonroot"), with nothing else in the image: no shell, no package manager.

ARG RUST_VERSION=1.95
FROM rust:${RUST_VERSION}-bookworm AS build
# ring (rustls' cryptography) compiles C: musl-gcc links it statically too.
RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends musl-tools \
    && rm -rf /var/lib/apt/lists/*
ARG TARGETARCH=amd64
RUN case "$TARGETARCH" in \
      amd64) echo x86_64-unknown-linux-musl > /rust-target ;; \
      arm64) echo aarch64-unknown-linux-musl > /rust-target ;; \
      *) echo "unsupported architecture $TARGETARCH" >&2; exit 1 ;; \
    esac && rustup target add "$(cat /rust-target)"
WORKDIR /src
COPY . .
# Cached registry and target folders make a rebuild after a code change take minutes, not the
# whole dependency tree again; the binaries are copied out of the cache mount.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    target="$(cat /rust-target)" \
    && cargo build --release --locked --target "$target" \
         -p trainloop -p trainloop-example-trainer -p trainloop-example-model-server \
    && mkdir /out \
    && cp "target/$target/release/trainloop" \
          "target/$target/release/trainloop-example-trainer" \
          "target/$target/release/trainloop-example-model-server" /out/

FROM gcr.io/distroless/static-debian12:nonroot AS operator
COPY --from=build /out/trainloop /usr/local/bin/trainloop
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/trainloop"]
CMD ["run"]

FROM gcr.io/distroless/static-debian12:nonroot AS trainer
COPY --from=build /out/trainloop-example-trainer /usr/local/bin/trainloop-example-trainer
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/trainloop-example-trainer"]

FROM gcr.io/distroless/static-debian12:nonroot AS model-server
COPY --from=build /out/trainloop-example-model-server /usr/local/bin/trainloop-example-model-server
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/trainloop-example-model-server"]
