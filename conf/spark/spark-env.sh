# Sourced by spark-submit (and by pyspark when it starts the JVM) from SPARK_CONF_DIR.
# Spark's Ivy resolves spark.jars.packages through a chain that ends in
# repos.spark-packages.org; every package here is on Maven Central, so both remote
# resolvers point there (no lookups of a host the machine may not reach).
export DEFAULT_ARTIFACT_REPOSITORY="${DEFAULT_ARTIFACT_REPOSITORY:-https://repo1.maven.org/maven2/}"
