"""TheHive 5 as the central queue: one alert per incident in the customer's organisation."""
