"""What a run shows: the report data layer (`data`), figures (`plots`), report.html (`html`), the terminal
summary (`terminal`), tables (`tables`) and the pytest-html integration (`pytest_html`)."""
