# Sourced by spark-submit (and by pyspark when it starts the JVM) from SPARK_CONF_DIR.
# No package is resolved at start (spark.jars names cached files), but a user's own
# --packages would go through Ivy's chain, which ends in repos.spark-packages.org: point
# both remote resolvers at Maven Central (no lookups of a host the machine may not reach).
export DEFAULT_ARTIFACT_REPOSITORY="${DEFAULT_ARTIFACT_REPOSITORY:-https://repo1.maven.org/maven2/}"
