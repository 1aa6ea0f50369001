# syntax=docker/dockerfile:1
#
# The one neovratz binary in a small image. Targets:
#
#   neovratz (the default, last stage)  static binary (CGO_ENABLED=0) on distroless/static:
#                                       CA certificates, tzdata, a non-root user, no shell
#   worker-gpu                          the same program built with GPU telemetry (NVML through
#                                       cgo, build tag nvml) on distroless/base (glibc)
#
#   docker build -t neovratz .
#   docker build -t neovratz:gpu --target worker-gpu .
#
# Both stages build on Debian bookworm and the glibc build runs on Debian 12's glibc: keep the
# two in step when changing GO_VERSION's image or the base images.
ARG GO_VERSION=1.26

FROM golang:${GO_VERSION}-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
ARG VERSION=dev
ARG COMMIT=
ENV LDFLAGS="-s -w -X main.version=${VERSION} -X main.commit=${COMMIT}"
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 go build -trimpath -ldflags "$LDFLAGS" -o /out/neovratz ./cmd/neovratz \
    && mkdir -p /out/data

# go-nvml reaches NVML through cgo; the binary still starts without a GPU or driver (NVML is
# loaded at run time) and then serves no GPU metrics.
FROM build AS build-gpu
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=1 CGO_CFLAGS="-O2 -Wno-deprecated-declarations" \
    go build -tags nvml -trimpath -ldflags "$LDFLAGS" -o /out/neovratz-gpu ./cmd/neovratz

FROM gcr.io/distroless/base-debian12:nonroot AS worker-gpu
COPY --from=build-gpu /out/neovratz-gpu /usr/local/bin/neovratz
USER nonroot:nonroot
EXPOSE 9090
ENTRYPOINT ["/usr/local/bin/neovratz"]
CMD ["worker"]

FROM gcr.io/distroless/static-debian12:nonroot AS neovratz
COPY --from=build /out/neovratz /usr/local/bin/neovratz
# The data directory of `neovratz serve` (embedded broker, key store), owned by the user the
# program runs as, so that a volume mounted there is writable.
COPY --from=build --chown=nonroot:nonroot /out/data /data
USER nonroot:nonroot
VOLUME /data
EXPOSE 8080 9090
ENTRYPOINT ["/usr/local/bin/neovratz"]
CMD ["serve", "--addr", "0.0.0.0:8080", "--data-dir", "/data"]
