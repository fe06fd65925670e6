"""Watching a served model: what each request looked like (``observe``), the validation reference it is compared
with (``reference``), the statistics that say it moved (``drift``), the request log in a database (``log``), the
report the server, the Monitor tab and Prometheus read (``report``), and the predictions a person should check
first (``review``)."""
