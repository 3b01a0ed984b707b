# syntax=docker/dockerfile:1
# The fngate gateway image: a Debian 12 build stage, then a slim Debian 12 runtime with only
# the shared libraries the binary links. Build from the repository root:
#
#   docker build -f deploy/docker/gateway.Dockerfile -t fngate/gateway .
#   docker run --rm -p 127.0.0.1:8080:8080 fngate/gateway --function=echo=dns:///echo:7001
#
# The image reads /etc/fngate/gateway.yaml (listeners on 0.0.0.0, no functions); mount your own
# there, or add flags after the image name: they override the file (--function=NAME=TARGET, ...).
# The image also holds fngatectl, the control service's CLI, for `docker exec`:
#
#   docker exec <container> fngatectl list

FROM debian:bookworm AS build
WORKDIR /src
# Dependencies first: this layer stays cached while the sources change.
COPY scripts/install-deps.sh scripts/
RUN bash scripts/install-deps.sh && rm -rf /var/lib/apt/lists/*
COPY . .
# Only the gateway and its CLI; no tests. The ccache cache mount (BuildKit) makes rebuilds cheap.
RUN --mount=type=cache,target=/root/.cache/ccache \
    BUILD_DIR=/build BUILD_TYPE=Release CMAKE_ARGS="-DBUILD_TESTING=OFF" \
      bash scripts/build.sh fngate fngatectl \
 && install -D -m 0755 /build/gateway/fngate /out/fngate \
 && install -D -m 0755 /build/gateway/ctl/fngatectl /out/fngatectl

FROM debian:bookworm-slim
# The Debian 12 packages holding every library `ldd fngate` lists (gRPC 1.51, Protobuf 3.21,
# Abseil, RE2, c-ares, OpenSSL 3, zlib, yaml-cpp 0.7, Boost.JSON 1.81); libstdc++ and libc are
# in the base.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      libgrpc++1.51 libgrpc29 libprotobuf32 libabsl20220623 libre2-9 libc-ares2 \
      libssl3 zlib1g libjemalloc2 libyaml-cpp0.7 libboost-json1.81.0 \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --user-group --no-create-home --shell /usr/sbin/nologin fngate
COPY --from=build /out/fngate /out/fngatectl /usr/local/bin/
COPY deploy/docker/gateway.container.yaml /etc/fngate/gateway.yaml
COPY deploy/gateway.example.yaml /etc/fngate/gateway.example.yaml
# Fail the build, not the first start, if a library is missing from the list above.
RUN if ldd /usr/local/bin/fngate /usr/local/bin/fngatectl | grep 'not found'; then exit 1; fi

USER 10001:10001
# WebSocket, control (gRPC), admin HTTP (/healthz /readyz /metrics).
EXPOSE 8080 8081 8082
# SIGTERM drains: clients get 1001, every disconnect event is delivered (drain_grace_ms).
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/fngate", "--config=/etc/fngate/gateway.yaml"]
