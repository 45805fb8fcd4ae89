"""Operations: running the service and watching it.

    server.py     `qa serve`: uvicorn workers, drain on SIGTERM, the metrics folder
    accesslog.py  access logs without questions
    metrics.py    Prometheus metrics and the middleware that counts requests
    deploy.py     `qa deploy`: nginx in front of N supervised replicas on one machine
"""
