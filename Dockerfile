# The hivebrain node as a container (the hub node in docker-compose.yml).
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY events ./events
COPY actors ./actors
COPY projections ./projections
COPY hivebrain ./hivebrain
RUN pip install --no-cache-dir .
ENV HIVEBRAIN_HOME=/var/lib/hivebrain
VOLUME /var/lib/hivebrain
ENTRYPOINT ["hivebrain"]
CMD ["up"]
