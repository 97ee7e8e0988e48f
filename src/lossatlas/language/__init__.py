"""Large vocabularies: candidate samplers, NCE, sampled softmax and word2vec negative sampling."""
