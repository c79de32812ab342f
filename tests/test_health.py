def test_healthz_reports_database_pgvector_redis_and_models(db, client):
    response = client.get("/healthz")
    body = response.json()
    assert response.status_code == 200, body
    assert body["status"] == "ok"
    assert body["checks"]["database"]["ok"] and body["checks"]["database"]["pgvector"]
    assert body["checks"]["redis"]["ok"]
    models = body["checks"]["models"]["models"]
    assert set(models) == {"stt", "tts", "llm_embedded", "embeddings"}
    assert all(m["ok"] and m["path"] for m in models.values())
    assert models["tts"]["path"].endswith("en_US-joe-medium.onnx")


def test_healthz_is_503_and_names_redis_when_it_is_down(db, client, settings):
    settings.REDIS_URL = "redis://127.0.0.1:9/0"
    response = client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "degraded"
    assert body["checks"]["redis"]["ok"] is False and "Connection" in body["checks"]["redis"]["error"]
    assert body["checks"]["database"]["ok"] is True


def test_healthz_names_a_missing_voice(db, client, settings, tmp_path):
    settings.TTS_DEFAULT_VOICE = "de_DE-thorsten-high"
    settings.TTS_VOICES_DIR = tmp_path
    response = client.get("/healthz")
    assert response.status_code == 503
    models = response.json()["checks"]["models"]
    assert models["ok"] is False and "tts" in models["error"]
    assert "de_DE-thorsten-high" in models["models"]["tts"]["error"]


def test_a_voice_file_in_the_voices_folder_is_found(settings, tmp_path):
    from voicebot import local_models

    (tmp_path / "de_DE-thorsten-high.onnx").write_bytes(b"onnx")
    (tmp_path / "de_DE-thorsten-high.onnx.json").write_text("{}")
    settings.TTS_VOICES_DIR = tmp_path
    assert local_models.piper_voice("de_DE-thorsten-high") == tmp_path / "de_DE-thorsten-high.onnx"
