"""Data quality steps of a build: per-record filters and decontamination against benchmarks.

- ``filters``: small pure checks of one record each (length, language, boilerplate, an answer that
  copies its question, StackExchange tags), configured by the recipe's ``filters:`` sections;
- ``decontaminate``: word n-gram matching of records against the questions of evaluation
  benchmarks named in the recipe's ``benchmarks:`` section.
"""
