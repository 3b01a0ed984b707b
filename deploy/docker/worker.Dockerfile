# syntax=docker/dockerfile:1
# A function worker image: one of the executables under functions/ (built on the C++ runtime),
# chosen by the FUNCTION build argument. Build from the repository root:
#
#   docker build -f deploy/docker/worker.Dockerfile -t fngate/echo .
#   docker build -f deploy/docker/worker.Dockerfile --build-arg FUNCTION=chat_function -t fngate/chat .
#
# The worker serves fngate.v1.FunctionService on 0.0.0.0:7001 (CMD; replace it to change flags:
# --listen, --log_events, --name, --gateway).

FROM debian:bookworm AS build
ARG FUNCTION=echo_function
WORKDIR /src
COPY scripts/install-deps.sh scripts/
RUN bash scripts/install-deps.sh && rm -rf /var/lib/apt/lists/*
COPY . .
RUN --mount=type=cache,target=/root/.cache/ccache \
    BUILD_DIR=/build BUILD_TYPE=Release CMAKE_ARGS="-DBUILD_TESTING=OFF" \
      bash scripts/build.sh "${FUNCTION}" \
 && install -D -m 0755 "/build/functions/${FUNCTION}" /out/worker

FROM debian:bookworm-slim
ARG FUNCTION=echo_function
# The Debian 12 packages holding every library the worker links (gRPC 1.51 with reflection,
# Protobuf 3.21, Abseil, RE2, c-ares, OpenSSL 3, zlib); libstdc++ and libc are in the base.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      libgrpc++1.51 libgrpc29 libprotobuf32 libabsl20220623 libre2-9 libc-ares2 \
      libssl3 zlib1g libjemalloc2 \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --user-group --no-create-home --shell /usr/sbin/nologin fngate
COPY --from=build /out/worker /usr/local/bin/worker
RUN ln -s worker "/usr/local/bin/${FUNCTION}" \
 && if ldd /usr/local/bin/worker | grep 'not found'; then exit 1; fi
LABEL org.opencontainers.image.title="fngate ${FUNCTION}"

USER 10001:10001
EXPOSE 7001
# SIGTERM: stop taking calls, finish the ones in flight (5 s), exit 0.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/worker"]
CMD ["--listen=0.0.0.0:7001"]
